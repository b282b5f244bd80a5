/* placeholder: being written; fails until the real suite lands */
int main(void) { return 1; }
