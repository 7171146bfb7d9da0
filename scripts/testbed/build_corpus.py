"""Builds the testbed's text: the pretraining corpus and the Austen fine-tuning/evaluation splits.

    python3 scripts/testbed/build_corpus.py [--out testbed-corpus] [--cache testbed-cache]

Fetches the pinned packages of sources.py (`apt-get download NAME=VERSION`, `npm pack
NAME@VERSION`), checks each one's licence statement, turns the chosen files into clean
documents (textclean.py), removes boilerplate, caps, exact duplicates and any document that
shares a 13-word passage with an Austen novel, and writes:

  OUT/train.jsonl.xz, OUT/val.jsonl.xz   pretraining documents {"text", "source"}; val is the
                                         held-out 0.5% (by a hash of the document's path)
  assets/testbed-data/finetune.txt      two Austen novels (fine-tuning split)
  assets/testbed-data/eval.txt          a third, up to a chapter boundary (evaluation split)
  scripts/testbed/manifest.json         per source: version, licence, files, bytes used

Everything is a function of the pinned packages, so a rebuild gives the same bytes: the
checksums printed at the end (sha256 of the uncompressed text) say whether it did. OUT and the
download cache are git-ignored; the splits and the manifest are committed.
"""
import argparse
import fnmatch
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rdata  # noqa: E402
import sources as S  # noqa: E402
import textclean as tc  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
SPLITS_DIR = os.path.join(ROOT, "assets", "testbed-data")
MANIFEST = os.path.join(HERE, "manifest.json")
VAL_EVERY = 200  # one document in 200 (by path hash) is held out for validation
SHINGLE = 13  # words: a shared passage this long counts as contamination


def log(msg):
    print(msg, flush=True)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def path_hash(key: str) -> int:
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big")


# ---------------------------------------------------------------- fetching

def fetch_deb(src, cache):
    """The package's files as {path: bytes} (regular files only), after checking its version."""
    debs = os.path.join(cache, "debs")
    os.makedirs(debs, exist_ok=True)
    name, version = src["name"], src["version"]
    fname = f"{name}_{version.replace(':', '%3a')}_"
    found = [f for f in os.listdir(debs) if f.startswith(fname) and f.endswith(".deb")]
    if not found:
        r = subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=debs, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"apt-get download {name}={version} failed (is the version still in the archive? "
                     f"see scripts/testbed/README.md): {r.stderr.strip()}")
        found = [f for f in os.listdir(debs) if f.startswith(fname) and f.endswith(".deb")]
    deb = os.path.join(debs, found[0])
    got = subprocess.run(["dpkg-deb", "-f", deb, "Version"], capture_output=True, text=True, check=True).stdout.strip()
    if got != version:
        sys.exit(f"{deb}: version {got}, expected {version}")
    tree = os.path.join(cache, "x", f"{name}_{version}")
    if not os.path.isdir(tree):
        shutil.rmtree(tree + ".tmp", ignore_errors=True)
        os.makedirs(tree + ".tmp")
        subprocess.run(["dpkg-deb", "-x", deb, tree + ".tmp"], check=True)
        os.rename(tree + ".tmp", tree)
    return tree, sha256(open(deb, "rb").read())


def deb_files(tree):
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for f in sorted(filenames):
            full = os.path.join(dirpath, f)
            if os.path.isfile(full) and not os.path.islink(full):
                yield os.path.relpath(full, tree), full


def fetch_npm(src, cache):
    npm = os.path.join(cache, "npm")
    os.makedirs(npm, exist_ok=True)
    name, version = src["name"], src["version"]
    tgz = os.path.join(npm, f"{name.lstrip('@').replace('/', '-')}-{version}.tgz")
    if not os.path.exists(tgz):
        r = subprocess.run(["npm", "pack", f"{name}@{version}", "--pack-destination", npm], capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(tgz):
            sys.exit(f"npm pack {name}@{version} failed: {r.stderr.strip()[-500:]}")
    return tgz, sha256(open(tgz, "rb").read())


def npm_files(tgz):
    with tarfile.open(tgz, "r:gz") as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile()), key=lambda m: m.name)
        for m in members:
            rel = m.name.split("/", 1)[1] if "/" in m.name else m.name
            yield rel, tar.extractfile(m).read()


def check_licence(src, text):
    if not re.search(src["licence_check"], text, re.MULTILINE):
        sys.exit(f"{src['name']} {src['version']}: its licence statement does not match {src['licence_check']!r}; "
                 "review the package's terms before using it")


def selected(src, rel):
    return any(fnmatch.fnmatchcase(rel, p) for p in src["include"]) and not any(fnmatch.fnmatchcase(rel, p) for p in src.get("exclude", []))


# ---------------------------------------------------------------- documents

def to_text(rel, raw):
    """(text, None) or (None, reason)."""
    if rel.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except OSError:
            return None, "binary"
        rel = rel[:-3]
    text = tc.decode(raw)
    if text is None:
        return None, "binary"
    if rel.endswith(".html"):
        text = tc.html_to_text(text)
    return tc.normalise(text), None


def source_documents(src, cache, stats):
    """The source's cleaned documents [(rel, text)], its licence checked, its package's checksum recorded."""
    docs = []
    if src["type"] == S.DEB:
        tree, digest = fetch_deb(src, cache)
        owner = src.get("copyright")
        # A package whose doc folder links to another one's: that package's copyright file.
        cr_tree = fetch_deb(next(p for p in S.PRETRAIN if p["name"] == owner), cache)[0] if owner else tree
        cr = os.path.join(cr_tree, "usr/share/doc", owner or src["name"], "copyright")
        check_licence(src, open(cr, encoding="utf-8", errors="replace").read())
        files = ((rel, lambda full=full: open(full, "rb").read()) for rel, full in deb_files(tree))
    else:
        tgz, digest = fetch_npm(src, cache)
        entries = list(npm_files(tgz))
        meta = json.loads(dict(entries)["package.json"])
        licence = meta.get("license")
        check_licence(src, licence if isinstance(licence, str) else json.dumps(licence))
        files = ((rel, lambda raw=raw: raw) for rel, raw in entries)
    stats["package_sha256"] = digest
    for rel, read in files:
        if not selected(src, rel):
            continue
        stats["files"] += 1
        text, why = to_text(rel, read())
        why = why or tc.reject(text, src["kind"])
        if why:
            stats["dropped"][why] = stats["dropped"].get(why, 0) + 1
            continue
        docs.append((rel, text))
    if not stats["files"]:
        sys.exit(f"{src['name']}: no file matches {src['include']}")
    return docs


def remove_boilerplate(src, docs, stats):
    texts = [t for _, t in docs]
    if any(rel.endswith(".html") for rel, _ in docs):
        # A site's navigation, headers and footers repeat on its pages.
        lines = tc.frequent_lines(texts, max(4, len(texts) // 50))
        docs = [(rel, tc.normalise(tc.drop_lines(t, lines))) for rel, t in docs]
    if src["kind"] == "code":
        blocks = tc.common_first_block(texts, max(5, len(texts) // 100))
        docs = [(rel, tc.drop_first_block(t, blocks)) for rel, t in docs]
    kept = []
    for rel, t in docs:
        why = tc.reject(t, src["kind"])
        if why:
            stats["dropped"][why] = stats["dropped"].get(why, 0) + 1
        else:
            kept.append((rel, t))
    return kept


def apply_cap(src, docs, stats):
    cap = src.get("cap_mb")
    if cap is None:
        return docs
    out, used = [], 0
    for rel, t in sorted(docs, key=lambda d: path_hash(src["name"] + "/" + d[0])):
        size = len(t.encode())
        if used + size > cap * 1e6:
            stats["dropped"]["cap"] = stats["dropped"].get("cap", 0) + 1
            continue
        out.append((rel, t))
        used += size
    return sorted(out)


# ---------------------------------------------------------------- Austen

def unwrap_novel(lines):
    """Hard-wrapped lines → one line per paragraph; the _italics_ marks removed."""
    paragraphs, current = [], []
    for line in lines + [""]:
        line = (line or "").strip()
        if line:
            current.append(line)
        elif current:
            paragraphs.append(re.sub(r"\s+", " ", " ".join(current)).replace("_", ""))
            current = []
    return paragraphs


def austen_splits(cache):
    src = S.AUSTEN
    tree, digest = fetch_deb(src, cache)
    check_licence(src, open(os.path.join(tree, "usr/share/doc", src["name"], "copyright"), encoding="utf-8").read())
    novels = rdata.read_lazyload_db(os.path.join(tree, src["rdx"]), os.path.join(tree, src["rdb"]))
    paragraphs = {name: unwrap_novel(list(lines)) for name, lines in novels.items()}
    finetune = "\n\n".join("\n\n".join(paragraphs[n]) for n in S.FINETUNE_NOVELS) + "\n"
    eval_text, size = [], 0
    chapter = []
    for p in paragraphs[S.EVAL_NOVEL] + ["Chapter END"]:
        if re.fullmatch(r"Chapter \w+", p) or p == "Chapter END":
            block = "\n\n".join(chapter) + "\n\n"
            if size + len(block.encode()) > S.EVAL_MAX_BYTES:
                break
            eval_text.append(block)
            size += len(block.encode())
            chapter = []
        chapter.append(p)
    eval_text = "".join(eval_text).rstrip("\n") + "\n"
    return novels, paragraphs, tc.normalise(finetune) + "\n", tc.normalise(eval_text) + "\n", digest


def shingles(text):
    words = re.findall(r"[a-z]+", text.lower())
    return {" ".join(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def contaminated(text, austen):
    words = re.findall(r"[a-z]+", text.lower())
    return any(" ".join(words[i:i + SHINGLE]) in austen for i in range(len(words) - SHINGLE + 1))


# ---------------------------------------------------------------- main

def write_jsonl_xz(path, docs):
    raw = "".join(json.dumps({"text": t, "source": s}, ensure_ascii=False) + "\n" for s, t in docs).encode()
    # xz's own threads (blocks of 24 MiB at -6); the checksums are of the uncompressed text.
    with open(path + ".tmp", "wb") as f:
        subprocess.run(["xz", "-6", "-T2", "-c"], input=raw, stdout=f, check=True)
    os.replace(path + ".tmp", path)
    return raw


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "testbed-corpus"))
    ap.add_argument("--cache", default=os.path.join(ROOT, "testbed-cache"))
    args = ap.parse_args()
    t0 = time.time()
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(SPLITS_DIR, exist_ok=True)

    novels, paragraphs, finetune, eval_text, austen_digest = austen_splits(args.cache)
    austen = set()
    for name in novels:
        austen |= shingles("\n".join(paragraphs[name]))
    log(f"Austen: fine-tune {len(finetune.encode())} bytes, eval {len(eval_text.encode())} bytes, {len(austen)} shingles")

    manifest, seen, corpus = [], set(), []
    for src in S.PRETRAIN:
        stats = {"files": 0, "dropped": {}}
        docs = source_documents(src, args.cache, stats)
        docs = apply_cap(src, remove_boilerplate(src, docs, stats), stats)
        kept = 0
        used = 0
        for rel, text in docs:
            key = sha256(re.sub(r"\s+", " ", text).encode())
            if key in seen:
                stats["dropped"]["duplicate"] = stats["dropped"].get("duplicate", 0) + 1
                continue
            if contaminated(text, austen):
                stats["dropped"]["austen-overlap"] = stats["dropped"].get("austen-overlap", 0) + 1
                continue
            seen.add(key)
            corpus.append((f"{src['name']}/{rel}", text))
            kept += 1
            used += len(text.encode())
        manifest.append({"package": src["name"], "version": src["version"], "registry": "debian" if src["type"] == S.DEB else "npm",
                         "kind": src["kind"], "licence": src["licence"], "package_sha256": stats["package_sha256"],
                         "files_matched": stats["files"], "documents": kept, "bytes_used": used,
                         "dropped": dict(sorted(stats["dropped"].items()))})
        log(f"{src['name']:24s} {src['version']:24s} {kept:6d} docs {used / 1e6:7.2f} MB  dropped {stats['dropped']}")

    val = [(s, t) for s, t in corpus if path_hash(s) % VAL_EVERY == 0]
    train = [(s, t) for s, t in corpus if path_hash(s) % VAL_EVERY != 0]
    raw_train = write_jsonl_xz(os.path.join(args.out, "train.jsonl.xz"), train)
    raw_val = write_jsonl_xz(os.path.join(args.out, "val.jsonl.xz"), val)
    for name, text in (("finetune.txt", finetune), ("eval.txt", eval_text)):
        with open(os.path.join(SPLITS_DIR, name), "w", encoding="utf-8") as f:
            f.write(text)

    text_bytes = lambda docs: sum(len(t.encode()) for _, t in docs)  # noqa: E731
    checksums = {"train.jsonl": sha256(raw_train), "val.jsonl": sha256(raw_val),
                 "finetune.txt": sha256(finetune.encode()), "eval.txt": sha256(eval_text.encode())}
    combined = sha256(json.dumps(checksums, sort_keys=True).encode())
    summary = {
        "pretrain": {"documents": len(corpus), "text_bytes": text_bytes(corpus),
                     "train": {"documents": len(train), "text_bytes": text_bytes(train),
                               "xz_bytes": os.path.getsize(os.path.join(args.out, "train.jsonl.xz"))},
                     "val": {"documents": len(val), "text_bytes": text_bytes(val),
                             "xz_bytes": os.path.getsize(os.path.join(args.out, "val.jsonl.xz"))},
                     "doc_bytes": sum(m["bytes_used"] for m in manifest if m["kind"] == "doc"),
                     "code_bytes": sum(m["bytes_used"] for m in manifest if m["kind"] == "code")},
        "austen": {"package": S.AUSTEN["name"], "version": S.AUSTEN["version"], "licence": S.AUSTEN["licence"],
                   "package_sha256": austen_digest, "finetune": {"novels": S.FINETUNE_NOVELS, "bytes": len(finetune.encode())},
                   "eval": {"novel": S.EVAL_NOVEL, "bytes": len(eval_text.encode()), "max_bytes": S.EVAL_MAX_BYTES},
                   "decontamination": f"pretraining documents sharing any {SHINGLE}-word passage with any of the six novels are dropped"},
        "checksums_sha256": checksums,
        "checksum": combined,
        "sources": manifest,
    }
    with open(MANIFEST, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    with open(os.path.join(args.out, "checksums.json"), "w") as f:
        json.dump(checksums, f, indent=1)
    p = summary["pretrain"]
    log(f"pretraining: {p['documents']} docs, {p['text_bytes'] / 1e6:.1f} MB (docs {p['doc_bytes'] / 1e6:.1f}, code {p['code_bytes'] / 1e6:.1f}); "
        f"xz {(p['train']['xz_bytes'] + p['val']['xz_bytes']) / 2**20:.1f} MiB; val {p['val']['text_bytes'] / 1e6:.2f} MB")
    log(f"in {time.time() - t0:.0f} s; checksum {combined}")


if __name__ == "__main__":
    main()
