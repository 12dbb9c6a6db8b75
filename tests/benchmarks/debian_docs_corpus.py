"""The English corpus of docs/training-parity.md: Debian's documentation packages as plain text, one file per
document, de-duplicated by content. ~4,900 documents, ~52 MB.

    apt-get install linux-doc-6.1 python3.11-doc perl-doc postgresql-doc-15
    python3 tests/benchmarks/debian_docs_corpus.py OUT_FOLDER

OUT_FOLDER is then a MoTLab corpus (data.corpus: the folder): its files are read in name order, so the held-out
tail of the token stream is the last documents (PostgreSQL's pages; each source's documents stay together).
"""
import gzip
import hashlib
import html.parser
import os
import pathlib
import sys

SOURCES = [
    ("linux", "/usr/share/doc/linux-doc-6.1/Documentation", (".rst", ".rst.gz")),
    ("python", "/usr/share/doc/python3.11/html/_sources", (".txt",)),
    ("perl", "/usr/share/perl/5.36/pod", (".pod",)),
    ("postgresql", "/usr/share/doc/postgresql-doc-15/html", (".html",)),
]


class Text(html.parser.HTMLParser):
    """The visible text of an HTML page (scripts and styles left out)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip -= 1
        elif tag in ("p", "div", "pre", "h1", "h2", "h3", "h4", "li", "tr", "dt", "dd", "br"):
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def read(path):
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    text = raw.decode("utf-8", errors="replace").replace("\ufffd", "")
    if path.endswith(".html"):
        parser = Text()
        parser.feed(text)
        text = "".join(parser.parts)
    lines = [line.rstrip() for line in text.replace("\r", "").split("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def main(out):
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seen, count, size = set(), 0, 0
    for name, root, endings in SOURCES:
        if not os.path.isdir(root):
            sys.exit(f"{root} is missing: apt-get install linux-doc-6.1 python3.11-doc perl-doc postgresql-doc-15")
        for path in sorted(str(p) for p in pathlib.Path(root).rglob("*") if p.is_file() and str(p).endswith(endings)):
            text = read(path)
            digest = hashlib.sha256(text.encode()).digest()
            if len(text) < 200 or digest in seen or "\0" in text:
                continue
            seen.add(digest)
            (out / f"{count:05d}-{name}.txt").write_text(text, encoding="utf-8")
            count += 1
            size += len(text.encode())
    print(f"{count} documents, {size / 1e6:.1f} MB in {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs-corpus")
