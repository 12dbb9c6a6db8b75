"""A gigabyte of text as JSON Lines shards, for the token store benchmarks in docs/benchmarks.md.

    python3 tests/benchmarks/corpus_gigabyte.py SOURCE_FOLDER OUT_FOLDER [--mb 1000]

Cycles through SOURCE_FOLDER's text files (e.g. the debian-docs folder that debian_docs_corpus.py writes), one
document per file, each copy numbered so that no two documents are the same text, into OUT_FOLDER/part-NNN.jsonl.gz
shards of about 100 MB of text each, until MB megabytes (10^6 bytes) of UTF-8 text are written.
"""
import gzip
import json
import os
import sys

source, out = sys.argv[1], sys.argv[2]
target = int(float(sys.argv[sys.argv.index("--mb") + 1]) * 1e6) if "--mb" in sys.argv else 1_000_000_000
docs = []
for root, _, files in sorted(os.walk(source)):
    for name in sorted(files):
        with open(os.path.join(root, name), encoding="utf-8", errors="ignore") as f:
            docs.append(f.read())
os.makedirs(out, exist_ok=True)
written, shard, copy, shard_bytes, w = 0, 0, 0, 0, None
while written < target:
    for doc in docs:
        if w is None or shard_bytes >= 100_000_000:
            if w: w.close()
            w = gzip.open(os.path.join(out, f"part-{shard:03d}.jsonl.gz"), "wt", encoding="utf-8", compresslevel=1)
            shard, shard_bytes = shard + 1, 0
        text = f"[copy {copy}] {doc}"
        w.write(json.dumps({"text": text}) + "\n")
        n = len(text.encode("utf-8"))
        written, shard_bytes = written + n, shard_bytes + n
        if written >= target: break
    copy += 1
w.close()
print(f"{written / 1e6:.0f} MB of text in {shard} shards under {out}")
