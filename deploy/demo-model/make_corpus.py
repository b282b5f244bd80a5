#!/usr/bin/env python3
"""make_corpus.py: build the demo model's English training corpus from
Debian packages (see README.md beside this file for the sources and their
licences).

    deploy/demo-model/make_corpus.py [--out deploy/demo-model/corpus/corpus.txt.gz]

Downloads the packages with `apt-get download` into a temporary folder
(`apt-get update` must have run once), unpacks them with `dpkg -x`, and
writes one gzip'd UTF-8 text file: documents (one fortune cookie, one
dictionary or lexicon entry) separated by a line holding only
<|endoftext|>. Needs only Python 3 and dpkg/apt; the output is the same
for the same package versions (gzip's mtime is fixed at 0).

Cleaning: backspace overstrikes ("_\\bx", old underlining) are resolved to
the struck character, tabs become spaces, each line is stripped and runs
of spaces are collapsed to one, {cross-reference} braces are dropped, and
blank-line runs become a single blank line.
"""
import argparse
import glob
import gzip
import os
import re
import subprocess
import sys
import tempfile
import unicodedata

EOT = "<|endoftext|>"

# Debian packages and what is taken from each (all in Debian main).
PACKAGES = ["fortunes", "fortunes-bofh-excuses", "fortunes-debian-hints", "dict-devil", "jargon-text"]
FORTUNE_SKIP = {"ascii-art"}  # pictures, not text


def clean_lines(text):
    """Normalise one document's text; returns the cleaned string."""
    text = text.replace("\r", "")
    text = re.sub(r".\x08", "", text)  # overstrike: keep what was struck over it
    text = text.replace("\x08", "").replace("\t", " ")
    text = "".join(c for c in text if c == "\n" or unicodedata.category(c)[0] != "C")
    text = text.replace("{", "").replace("}", "")
    lines = [re.sub(r" {2,}", " ", ln.strip()) for ln in text.split("\n")]
    out, blank = [], False
    for ln in lines:
        if not ln:
            blank = bool(out)
            continue
        if blank:
            out.append("")
            blank = False
        out.append(ln)
    return unicodedata.normalize("NFC", "\n".join(out))


def read_text(path):
    with open(path, "rb") as f:
        raw = f.read()
    return raw.decode("utf-8", errors="replace").replace("\ufffd", "")


def fortunes(root):
    """Each %-separated cookie of each English fortune file."""
    docs = []
    for path in sorted(glob.glob(os.path.join(root, "usr/share/games/fortunes/*"))):
        name = os.path.basename(path)
        if "." in name or os.path.isdir(path) or os.path.islink(path) or name in FORTUNE_SKIP:
            continue
        for cookie in re.split(r"^%\s*$", read_text(path), flags=re.M):
            docs.append(clean_lines(cookie))
    return docs


def devil(root):
    """The Devil's Dictionary: one document per headword entry (verses and
    quotations that follow an entry stay with it)."""
    with gzip.open(os.path.join(root, "usr/share/dictd/devil.dict.dz"), "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    start = text.find("\nA, ")  # the entries start after the preface
    if start < 0:
        start = text.find("\nABASEMENT")
    body = text[start + 1:]
    head = re.compile(r"^[A-Z][A-Z0-9'. -]*[A-Z.], (n|v|adj|adv|pp|p|pron|prep|conj|interj|x)\b", re.M)
    starts = [m.start() for m in head.finditer(body)] + [len(body)]
    return [clean_lines(body[a:b]) for a, b in zip(starts, starts[1:])]


def jargon(root):
    """The Jargon File 4.4.7 lexicon: one document per ':entry:'."""
    with gzip.open(os.path.join(root, "usr/share/doc/jargon-text/jargon.txt.gz"), "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    first = re.search(r"^ {3}:0:", text, flags=re.M) or re.search(r"^ {3}:[^:\n]+:", text, flags=re.M)
    body = text[first.start():]
    end = re.search(r"^Part III\. Appendices", body, flags=re.M)
    if end:
        body = body[: end.start()]
    starts = [m.start() for m in re.finditer(r"^ {3}:[^:\n]+:", body, flags=re.M)] + [len(body)]
    docs = []
    for a, b in zip(starts, starts[1:]):
        entry = re.sub(r"^ {3}:([^:\n]+):", r"\1:", body[a:b], count=1)
        docs.append(clean_lines(entry))
    return docs


def fetch(workdir):
    """apt-get download + dpkg -x each package into workdir/root; returns
    (root, [package_version...])."""
    root = os.path.join(workdir, "root")
    subprocess.run(["apt-get", "download", "-q"] + PACKAGES, cwd=workdir, check=True)
    versions = []
    for deb in sorted(glob.glob(os.path.join(workdir, "*.deb"))):
        subprocess.run(["dpkg", "-x", deb, root], check=True)
        versions.append(os.path.basename(deb))
    return root, versions


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "corpus", "corpus.txt.gz"))
    ap.add_argument("--root", help="an already unpacked root (skip the download)")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root, versions = (a.root, ["(given root)"]) if a.root else fetch(tmp)
        parts = {"fortunes": fortunes(root), "devil": devil(root), "jargon": jargon(root)}
    docs = [d for ds in parts.values() for d in ds if len(d) >= 8]
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    data = ("\n" + EOT + "\n").join(docs) + "\n"
    assert EOT not in "".join(docs)
    with open(a.out, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as f:
        f.write(data.encode("utf-8"))
    for k, v in parts.items():
        print(f"{k}: {len(v)} documents, {sum(len(d) for d in v)} characters", file=sys.stderr)
    print(f"{a.out}: {len(docs)} documents, {len(data.encode())} bytes of text; from {versions}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
