"""The testbed corpus's sources, pinned: which packages, which files of each, and why each may be used.

Two kinds of text, as in the LoftQ paper's WikiText-2 experiment (pretrained on one kind of
text, fine-tuned and evaluated on another):

- PRETRAIN: technical English and source code — documentation and sources shipped by Debian
  (bookworm, main) and by the npm registry.
- AUSTEN: literary prose — Jane Austen's six novels (public domain), which Debian ships inside
  the R package janeaustenr. Two novels make the fine-tuning split, a third the held-out
  evaluation split; none of them is in the pretraining text (build_corpus.py checks).

Each source names its licence as the package's copyright file (Debian) or package.json
(npm) states it, and `licence_check`, a regular expression that must match that file, so a
re-pinned version whose terms changed fails the build instead of slipping in. Every licence
here allows redistributing derived text (GPL/LGPL, Artistic, PSF, BSD, MIT/Expat, ISC,
Apache-2.0, PostgreSQL, CC-BY-SA, public domain). Non-free, GFDL-with-invariants and
"no modification" terms are not used.

Paths are fnmatch patterns (`*` crosses `/`) inside the package: the extracted .deb tree, or
the npm tarball with its leading `package/` removed. `cap_mb` keeps a large source from
dominating: its documents, in the order of a hash of their paths, are taken until the cap.
`kind` is "doc" (prose) or "code"; it only changes which clean-up rules apply.
"""

# Debian bookworm (12.x) main, as `apt-get download NAME=VERSION` fetches it.
DEB = "deb"
NPM = "npm"

PY_DOC = "usr/share/doc/python3.11/html/_sources/"
LINUX_DOC = "usr/share/doc/linux-doc-6.1/Documentation/"

PRETRAIN = [
    # ---- documentation (English technical prose) ----
    dict(type=DEB, name="linux-doc-6.1", version="6.1.192-3", kind="doc", licence="GPL-2",
         licence_check=r"License: GPL-2",
         include=[LINUX_DOC + "*.rst.gz", LINUX_DOC + "*.txt.gz", LINUX_DOC + "ABI/*"],
         exclude=[LINUX_DOC + "translations/*", LINUX_DOC + "devicetree/bindings/*", LINUX_DOC + "*.yaml.gz",
                  LINUX_DOC + "*/LICENSES/*", LINUX_DOC + "sphinx/*"],
         cap_mb=36),
    dict(type=DEB, name="python3.11-doc", version="3.11.2-6+deb12u9", kind="doc", licence="PSF-2.0",
         licence_check=r"LICENSE AGREEMENT is between the Python Software Foundation",
         include=[PY_DOC + "*.rst.txt"],
         # The changelog is thousands of one-line issue summaries generated from NEWS entries.
         exclude=[PY_DOC + "whatsnew/changelog.rst.txt"]),
    dict(type=DEB, name="perl-doc", version="5.36.0-7+deb12u4", kind="doc", licence="GPL-1+ or Artistic",
         licence_check=r"License: GPL-1\+ or Artistic",
         include=["usr/share/perl/5.36.0/pod/*.pod"],
         # The per-release change logs (perlNNNNdelta) are lists of changes, much repeated.
         exclude=["usr/share/perl/5.36.0/pod/perl5*delta.pod", "usr/share/perl/5.36.0/pod/perl58*delta.pod"]),
    dict(type=DEB, name="git-doc", version="1:2.39.5-0+deb12u3", kind="doc", licence="GPL-2",
         licence_check=r"License: GPL-2",
         include=["usr/share/doc/git-doc/*.txt"],
         exclude=["usr/share/doc/git-doc/RelNotes/*"]),
    dict(type=DEB, name="nodejs-doc", version="18.20.4+dfsg-1~deb12u3", kind="doc", licence="Expat",
         licence_check=r"License: Expat",
         include=["usr/share/doc/nodejs/api/*.md.gz"]),
    dict(type=DEB, name="debian-policy", version="4.6.2.0", kind="doc", licence="GPL-2+",
         licence_check=r"License: GPL-2\+",
         include=["usr/share/doc/debian-policy/policy.html/_sources/*.rst.txt"]),
    dict(type=DEB, name="postgresql-doc-15", version="15.20-0+deb12u1", kind="doc", licence="PostgreSQL",
         licence_check=r"License: PostgreSQL",
         include=["usr/share/doc/postgresql-doc-15/html/*.html"],
         exclude=["usr/share/doc/postgresql-doc-15/html/release-*.html", "usr/share/doc/postgresql-doc-15/html/bookindex.html"]),
    dict(type=DEB, name="python-django-doc", version="3:3.2.25-0+deb12u7", kind="doc", licence="BSD-3-Clause",
         licence_check=r"License: BSD-3-Clause",
         include=["usr/share/doc/python-django-doc/html/*.html"],
         exclude=["usr/share/doc/python-django-doc/html/releases/*", "usr/share/doc/python-django-doc/html/genindex*.html",
                  "usr/share/doc/python-django-doc/html/py-modindex.html", "usr/share/doc/python-django-doc/html/search.html"]),
    dict(type=DEB, name="sqlite3-doc", version="3.40.1-2+deb12u2", kind="doc", licence="public-domain",
         licence_check=r"License: public-domain",
         include=["usr/share/doc/sqlite3/*.html"],
         exclude=["usr/share/doc/sqlite3/releaselog/*", "usr/share/doc/sqlite3/changes.html", "usr/share/doc/sqlite3/chronology.html",
                  "usr/share/doc/sqlite3/doclist.html", "usr/share/doc/sqlite3/keyword_index.html", "usr/share/doc/sqlite3/sitemap.html"]),
    dict(type=DEB, name="debian-reference-en", version="2.100", kind="doc", licence="GPL-2+",
         licence_check=r"License: GPL-2\+",
         include=["usr/share/debian-reference/*.en.html"]),
    dict(type=DEB, name="debian-handbook", version="11.20220922", kind="doc", licence="GPL-2.0+ or CC-BY-SA-3.0",
         licence_check=r"License: GPL-2\.0\+ or CC-BY-SA-3\.0",
         include=["usr/share/doc/debian-handbook/html/en-US/*.html"]),
    # ---- source code ----
    dict(type=DEB, name="golang-1.19-src", version="1.19.8-2", kind="code", licence="BSD-3-Clause (Go)",
         licence_check=r"License: Go",
         include=["usr/share/go-1.19/src/*.go"],
         exclude=["*_test.go", "*/testdata/*", "*/vendor/*"],
         cap_mb=24),
    dict(type=DEB, name="libpython3.11-minimal", version="3.11.2-6+deb12u9", kind="code", licence="PSF-2.0",
         licence_check=r"LICENSE AGREEMENT is between the Python Software Foundation",
         include=["usr/lib/python3.11/*.py"]),
    dict(type=DEB, name="libpython3.11-stdlib", version="3.11.2-6+deb12u9", kind="code", licence="PSF-2.0",
         licence_check=r"LICENSE AGREEMENT is between the Python Software Foundation",
         copyright="libpython3.11-minimal",  # its doc folder is a link to libpython3.11-minimal's
         include=["usr/lib/python3.11/*.py"]),
    dict(type=DEB, name="python3-django", version="3:3.2.25-0+deb12u7", kind="code", licence="BSD-3-Clause",
         licence_check=r"License: BSD-3-Clause",
         include=["usr/lib/python3/dist-packages/django/*.py"],
         exclude=["*/migrations/*", "*/locale/*"]),
    dict(type=DEB, name="perl-modules-5.36", version="5.36.0-7+deb12u4", kind="code", licence="GPL-1+ or Artistic",
         licence_check=r"License: GPL-1\+ or Artistic",
         include=["usr/share/perl/5.36.0/*.pm", "usr/share/perl/5.36.0/*.pl", "usr/share/perl/5.36.0/*.pod"],
         # Unicode property tables (unicore/) are generated data.
         exclude=["usr/share/perl/5.36.0/unicore/*"]),
    # npm: handwritten sources and the READMEs (bundles, builds and .min files are not used).
    dict(type=NPM, name="typescript", version="5.6.3", kind="code", licence="Apache-2.0", licence_check=r"^Apache-2\.0$",
         include=["lib/lib.*.d.ts", "README.md"]),
    dict(type=NPM, name="@types/node", version="22.10.2", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["*.d.ts", "README.md"]),
    dict(type=NPM, name="three", version="0.160.0", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["src/*.js", "examples/jsm/*.js", "README.md"],
         exclude=["examples/jsm/libs/*", "*.min.js", "examples/jsm/offscreen/*"]),
    dict(type=NPM, name="webpack", version="5.97.1", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["lib/*.js", "README.md"]),
    dict(type=NPM, name="eslint", version="9.17.0", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["lib/*.js", "README.md"]),
    dict(type=NPM, name="mongoose", version="8.9.2", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["lib/*.js", "types/*.d.ts", "README.md"]),
    dict(type=NPM, name="rxjs", version="7.8.1", kind="code", licence="Apache-2.0", licence_check=r"^Apache-2\.0$",
         include=["src/*.ts", "README.md"]),
    dict(type=NPM, name="jquery", version="3.7.1", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["src/*.js", "README.md"]),
    dict(type=NPM, name="lodash", version="4.17.21", kind="code", licence="MIT", licence_check=r"^MIT$",
         # The one-function modules; lodash.js and core.js repeat them, fp/ is generated.
         include=["*.js", "README.md"], exclude=["lodash.js", "core.js", "*.min.js", "fp/*", "fp.js"]),
    dict(type=NPM, name="moment", version="2.30.1", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["src/lib/*.js", "README.md"]),
    dict(type=NPM, name="mocha", version="11.0.1", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["lib/*.js", "README.md"]),
    dict(type=NPM, name="chai", version="5.1.2", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["lib/*.js", "README.md"]),
    dict(type=NPM, name="commander", version="12.1.0", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["lib/*.js", "Readme.md", "typings/*.d.ts"]),
    dict(type=NPM, name="express", version="4.21.2", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["lib/*.js", "Readme.md"]),
    dict(type=NPM, name="ws", version="8.18.0", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["lib/*.js", "README.md"]),
    dict(type=NPM, name="markdown-it", version="14.1.0", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["lib/*.mjs", "README.md"]),
    dict(type=NPM, name="d3-geo", version="3.1.1", kind="code", licence="ISC", licence_check=r"^ISC$",
         include=["src/*.js", "README.md"]),
    dict(type=NPM, name="d3-shape", version="3.2.0", kind="code", licence="ISC", licence_check=r"^ISC$",
         include=["src/*.js", "README.md"]),
    dict(type=NPM, name="d3-scale", version="4.0.2", kind="code", licence="ISC", licence_check=r"^ISC$",
         include=["src/*.js", "README.md"]),
    dict(type=NPM, name="preact", version="10.25.4", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["src/*.js", "src/*.d.ts", "hooks/src/*.js", "compat/src/*.js", "README.md"]),
    dict(type=NPM, name="immer", version="10.1.1", kind="code", licence="MIT", licence_check=r"^MIT$",
         include=["src/*.ts", "readme.md"]),
]

AUSTEN = dict(type=DEB, name="r-cran-janeaustenr", version="1.0.0-1", licence="MIT (package); the novels are public domain",
              licence_check=r"License: MIT",
              rdx="usr/lib/R/site-library/janeaustenr/data/Rdata.rdx",
              rdb="usr/lib/R/site-library/janeaustenr/data/Rdata.rdb")

# The splits: whole novels, so the evaluation text shares no passage with the fine-tuning text.
FINETUNE_NOVELS = ["prideprejudice", "sensesensibility"]
EVAL_NOVEL = "persuasion"
# The evaluation split ends at the last chapter boundary within this many bytes.
EVAL_MAX_BYTES = 400_000
