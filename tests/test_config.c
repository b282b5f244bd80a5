/* test_config.c: defaults, the JSON config file (and its errors), and the
 * NAME=PATH / HOST:PORT specs. */
#include "config/cfg.h"
#include "core/cpu.h"

#include <check.h>
#include <sched.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];

static void setup(void)
{
    strcpy(tmpdir, "/tmp/hmmba-cfg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

START_TEST(defaults)
{
    cfg_config c;
    cfg_init(&c);
    ck_assert_str_eq(c.host, "127.0.0.1");
    ck_assert_uint_eq(c.port, 8080);
    ck_assert_uint_eq(c.workers, (unsigned)eng_cpu_count());
    ck_assert_uint_eq(c.limits.max_body_bytes, 16u << 20);
    ck_assert_uint_eq(c.limits.stream_buffer_bytes, 1u << 20);
    ck_assert_uint_eq(c.limits.request_deadline_s, 300);
    ck_assert_uint_eq(c.threads, 0); /* every CPU for one forward pass */
    ck_assert_uint_eq(c.nmodels, 0);
    ck_assert(!c.no_ui); /* the playground is on */
    cfg_free(&c);
    cfg_free(NULL);
}
END_TEST

START_TEST(file_overrides_and_resolves_paths)
{
    const char *p =
        write_file("c.json", "{\"listen\": \"0.0.0.0:9001\", \"workers\": 3, \"threads\": 5,"
                             " \"models\": {\"a\": \"m/a.json\", \"b\": \"/abs/b\"},"
                             " \"limits\": {\"max_body_bytes\": 1000, \"session_ttl_s\": 5,"
                             " \"stream_buffer_bytes\": 4096, \"request_deadline_s\": 0},"
                             " \"ui\": false, \"model_root\": \"roots\","
                             " \"model_store\": \"/var/store\", \"read_only\": true}");
    cfg_config c;
    cfg_init(&c);
    eng_error e = {0};
    ck_assert_msg(cfg_load_file(&c, p, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(c.host, "0.0.0.0");
    ck_assert_uint_eq(c.port, 9001);
    ck_assert_uint_eq(c.workers, 3);
    ck_assert_uint_eq(c.threads, 5);
    ck_assert(c.no_ui);
    ck_assert_uint_eq(c.limits.stream_buffer_bytes, 4096);
    ck_assert_uint_eq(c.limits.request_deadline_s, 0); /* 0: no deadline */
    ck_assert_uint_eq(c.nmodels, 2);
    char want[300];
    snprintf(want, sizeof want, "%s/m/a.json", tmpdir);
    ck_assert_str_eq(c.models[0].path, want);
    ck_assert_str_eq(c.models[1].path, "/abs/b");
    snprintf(want, sizeof want, "%s/roots", tmpdir);
    ck_assert_str_eq(c.model_root, want);
    ck_assert_str_eq(c.model_store, "/var/store");
    ck_assert(c.read_only);
    ck_assert_uint_eq(c.limits.max_body_bytes, 1000);
    ck_assert_uint_eq(c.limits.session_ttl_s, 5);
    ck_assert_uint_eq(c.limits.queue_capacity, 256); /* untouched default */
    /* A later --model of the same name replaces the file's. */
    ck_assert_int_eq(cfg_add_model(&c, "a=/x.json", &e), 0);
    ck_assert_uint_eq(c.nmodels, 2);
    ck_assert_str_eq(c.models[0].path, "/x.json");
    cfg_free(&c);
}
END_TEST

static const struct {
    const char *text, *needle;
    int code;
} bad_files[] = {
    {"{\"listen\": 8080}", "listen", ENG_EINVAL},
    {"{\"listen\": \"localhost\"}", "listen", ENG_EINVAL},
    {"{\"listen\": \"127.0.0.1:70000\"}", "listen", ENG_EINVAL},
    {"{\"workers\": 0}", "workers", ENG_EINVAL},
    {"{\"workers\": \"4\"}", "workers", ENG_EINVAL},
    {"{\"ui\": \"off\"}", "ui must be true or false", ENG_EINVAL},
    {"{\"threads\": -1}", "threads", ENG_EINVAL},
    {"{\"limits\": {\"stream_buffer_bytes\": 0}}", "limits.stream_buffer_bytes", ENG_EINVAL},
    {"{\"models\": [\"a\"]}", "models", ENG_EINVAL},
    {"{\"models\": {\"a\": 1}}", "models.a", ENG_EINVAL},
    {"{\"limits\": {\"max_body_bytes\": -1}}", "limits.max_body_bytes", ENG_EINVAL},
    {"{\"limits\": {\"max_bdy_bytes\": 1}}", "limits.max_bdy_bytes", ENG_EINVAL},
    {"{\"limits\": {\"session_ttl_s\": 1e3}}", "limits.session_ttl_s", ENG_EINVAL},
    {"{\"limits\": {\"request_deadline_s\": -1}}", "limits.request_deadline_s", ENG_EINVAL},
    {"{\"wrokers\": 2}", "wrokers", ENG_EINVAL},
    {"{\"read_only\": 1}", "read_only", ENG_EINVAL},
    {"{\"model_root\": 1}", "model_root", ENG_EINVAL},
    {"{\"model_store\": [\"x\"]}", "model_store", ENG_EINVAL},
    {"{\"limits\": {\"max_batch\": 0}}", "limits.max_batch", ENG_EINVAL},
    {"{\"limits\": {\"queue_capacity\": 0}}", "limits.queue_capacity", ENG_EINVAL},
    {"{\"listen\": \"127.0.0.1: 80\"}", "listen", ENG_EINVAL},
    {"{\"listen\": \"127.0.0.1:+80\"}", "listen", ENG_EINVAL},
    {"{\"workers\": 2,}", ":1:", ENG_EFORMAT},
    {"[1]", "object", ENG_EFORMAT},
    {"{\"workers\": 1, \"workers\": 2}", "duplicate", ENG_EFORMAT},
    {"{\"models\": {\"a\": {\"path\": \"x\", \"template\": \"chatml\"}}}", "models.a.template",
     ENG_EINVAL},
    {"{\"models\": {\"a\": {\"chat_template\": \"chatml\"}}}", "models.a", ENG_EINVAL},
    {"{\"models\": {\"a\": {\"path\": \"x\", \"chat_template\": 1}}}", "models.a.chat_template",
     ENG_EINVAL},
    {"{\"cors_origins\": \"https://a.example\"}", "cors_origins", ENG_EINVAL},
    {"{\"cors_origins\": [\"https://a.example/path\"]}", "cors_origins[0]", ENG_EINVAL},
    {"{\"cors_origins\": [\"*\", 3]}", "cors_origins[1]", ENG_EINVAL},
};

START_TEST(bad_file)
{
    const char *p = write_file("bad.json", bad_files[_i].text);
    cfg_config c;
    cfg_init(&c);
    eng_error e = {0};
    ck_assert_int_eq(cfg_load_file(&c, p, &e), bad_files[_i].code);
    ck_assert_msg(strstr(e.msg, "bad.json") && strstr(e.msg, bad_files[_i].needle),
                  "case %d: \"%s\" lacks \"%s\"", _i, e.msg, bad_files[_i].needle);
    cfg_free(&c);
}
END_TEST

START_TEST(missing_file)
{
    cfg_config c;
    cfg_init(&c);
    eng_error e = {0};
    ck_assert_int_eq(cfg_load_file(&c, "/nonexistent/hmmba.json", &e), ENG_EIO);
    ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/hmmba.json"));
    cfg_free(&c);
}
END_TEST

START_TEST(specs)
{
    cfg_config c;
    cfg_init(&c);
    eng_error e = {0};
    ck_assert_int_eq(cfg_set_listen(&c, ":0", &e), 0);
    ck_assert_str_eq(c.host, "0.0.0.0");
    ck_assert_uint_eq(c.port, 0);
    ck_assert_int_eq(cfg_set_listen(&c, "[::1]:8081", &e), 0);
    ck_assert_str_eq(c.host, "::1");
    ck_assert_uint_eq(c.port, 8081);
    ck_assert_int_eq(cfg_set_listen(&c, "host:", &e), ENG_EINVAL);
    ck_assert_int_eq(cfg_set_listen(&c, "host:12x", &e), ENG_EINVAL);
    ck_assert_int_eq(cfg_add_model(&c, "noequals", &e), ENG_EINVAL);
    ck_assert_int_eq(cfg_add_model(&c, "=path", &e), ENG_EINVAL);
    ck_assert_int_eq(cfg_add_model(&c, "name=", &e), ENG_EINVAL);
    ck_assert_int_eq(cfg_add_model(&c, "m=a=b", &e), 0); /* the first '=' splits */
    ck_assert_str_eq(c.models[0].name, "m");
    ck_assert_str_eq(c.models[0].path, "a=b");
    cfg_free(&c);
}
END_TEST

/* The default thread counts follow the CPUs the process may run on (its
 * affinity, as taskset or a container's cpuset sets it), not the CPUs
 * the machine has. In a child, so that the count is read afresh. */
START_TEST(chat_template_and_cors)
{
    const char *p = write_file(
        "t.json", "{\"models\": {\"a\": {\"path\": \"m/a\", \"chat_template\": \"chatml\"},"
                  " \"b\": \"m/b\"}, \"cors_origins\": [\"https://a.example\", \"http://b:81\"]}");
    cfg_config c;
    cfg_init(&c);
    eng_error e = {0};
    ck_assert_int_eq(cfg_load_file(&c, p, &e), 0);
    ck_assert_uint_eq(c.nmodels, 2);
    ck_assert_str_eq(c.models[0].chat_template, "chatml");
    ck_assert_ptr_nonnull(strstr(c.models[0].path, "/m/a")); /* relative to the file */
    ck_assert_ptr_null(c.models[1].chat_template);
    ck_assert_uint_eq(c.ncors_origins, 2);
    ck_assert_str_eq(c.cors_origins[1], "http://b:81");
    /* flags: NAME=PATH,chat_template=FAMILY; origins repeat-proof */
    ck_assert_int_eq(cfg_add_model(&c, "b=/x/y,chat_template=mistral", &e), 0);
    ck_assert_str_eq(c.models[1].path, "/x/y");
    ck_assert_str_eq(c.models[1].chat_template, "mistral");
    ck_assert_int_eq(cfg_add_model(&c, "b=/x/y,chat_template=", &e), ENG_EINVAL);
    ck_assert_int_eq(cfg_add_cors_origin(&c, "https://a.example", &e), 0);
    ck_assert_uint_eq(c.ncors_origins, 2);
    ck_assert_int_eq(cfg_add_cors_origin(&c, "*", &e), 0);
    ck_assert_uint_eq(c.ncors_origins, 3);
    ck_assert_int_eq(cfg_add_cors_origin(&c, "a.example", &e), ENG_EINVAL);
    ck_assert_int_eq(cfg_add_cors_origin(&c, "", &e), ENG_EINVAL);
    ck_assert_int_eq(cfg_add_cors_origin(&c, "https://a b", &e), ENG_EINVAL);
    cfg_free(&c);
}
END_TEST

START_TEST(cpu_count_follows_affinity)
{
    cpu_set_t all;
    ck_assert_int_eq(sched_getaffinity(0, sizeof all, &all), 0);
    int first = 0;
    while (!CPU_ISSET(first, &all))
        first++;
    pid_t pid = fork();
    if (pid == 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(first, &one);
        if (sched_setaffinity(0, sizeof one, &one)) _exit(100);
        cfg_config c;
        cfg_init(&c);
        _exit(eng_cpu_count() == 1 && c.workers == 1 ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "pinned to one CPU, the count was not 1 (status %d)", status);
    ck_assert_int_ge(eng_cpu_count(), 1);
    ck_assert_int_le(eng_cpu_count(), CPU_COUNT(&all));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, file_overrides_and_resolves_paths);
    tcase_add_loop_test(tc, bad_file, 0, sizeof bad_files / sizeof bad_files[0]);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, specs);
    tcase_add_test(tc, chat_template_and_cors);
    tcase_add_test(tc, cpu_count_follows_affinity);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
