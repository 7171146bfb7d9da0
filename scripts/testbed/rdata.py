"""Reads the character vectors of an R package's lazy-load data base (data/Rdata.rdx + .rdb).

The testbed's fine-tuning and evaluation text (Jane Austen's novels) ships in Debian only as
the R package janeaustenr, whose data are R objects: the index (.rdx) is a gzip'd R
serialization of list(variables = list(NAME = c(offset, length)), ...), and each object in
the .rdb is [4-byte big-endian size][zlib stream] of its own serialization. This module reads
R's XDR serialization format (versions 2 and 3) far enough for that: pairlists, symbols,
references, character/integer/logical/double vectors and lists, with attributes.
"""
import gzip
import struct
import zlib

NILVALUE, REFSXP, EMPTYENV, BASEENV, GLOBALENV = 254, 255, 242, 241, 253
UNBOUND, MISSINGARG, BASENAMESPACE = 252, 251, 250
SYMSXP, LISTSXP, LANGSXP, CHARSXP, LGLSXP, INTSXP, REALSXP, STRSXP, VECSXP = 1, 2, 6, 9, 10, 13, 14, 16, 19
HAS_ATTR, HAS_TAG = 1 << 9, 1 << 10


class RVector(list):
    """A list of values with R attributes (names, class, ...)."""

    def __init__(self, items, attributes=None):
        super().__init__(items)
        self.attributes = attributes or {}


class Reader:
    def __init__(self, data: bytes):
        if data[:2] != b"X\n":
            raise ValueError("not an R XDR serialization")
        self.data, self.pos, self.refs = data, 2, []
        version = self.int()
        self.int()  # the writer's R version
        self.int()  # the minimal reader version
        if version == 3:
            size = self.int()
            self.pos += size  # the native encoding's name
        elif version != 2:
            raise ValueError(f"R serialization version {version} is not supported")

    def int(self) -> int:
        (v,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return v

    def length(self) -> int:
        n = self.int()
        if n == -1:
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        return n

    def attributes(self, flags) -> dict:
        if not flags & HAS_ATTR:
            return {}
        pairs = self.item()
        return dict(pairs) if isinstance(pairs, list) else {}

    def item(self):
        flags = self.int()
        kind = flags & 0xFF
        if kind in (NILVALUE, EMPTYENV, BASEENV, GLOBALENV, UNBOUND, MISSINGARG, BASENAMESPACE):
            return None
        if kind == REFSXP:
            index = flags >> 8 or self.int()
            return self.refs[index - 1]
        if kind == SYMSXP:
            name = self.item()
            self.refs.append(name)
            return name
        if kind in (LISTSXP, LANGSXP):
            # A pairlist as a Python list of (tag, value), following the CDR chain iteratively.
            out = []
            while True:
                attr = self.attributes(flags)
                del attr
                tag = self.item() if flags & HAS_TAG else None
                out.append((tag, self.item()))
                flags = self.int()
                if flags & 0xFF == NILVALUE:
                    return out
                if flags & 0xFF not in (LISTSXP, LANGSXP):
                    raise ValueError(f"unexpected pairlist tail of type {flags & 0xFF}")
        if kind == CHARSXP:
            n = self.int()
            if n == -1:
                return None
            raw = self.data[self.pos:self.pos + n]
            self.pos += n
            return raw.decode("utf-8")  # the encodings R marks (UTF-8, latin1, ASCII) all decode as UTF-8 here or fail loudly
        if kind in (LGLSXP, INTSXP):
            n = self.length()
            values = list(struct.unpack_from(f">{n}i", self.data, self.pos))
            self.pos += 4 * n
            return RVector(values, self.attributes(flags))
        if kind == REALSXP:
            n = self.length()
            values = list(struct.unpack_from(f">{n}d", self.data, self.pos))
            self.pos += 8 * n
            return RVector(values, self.attributes(flags))
        if kind in (STRSXP, VECSXP):
            n = self.length()
            values = [self.item() for _ in range(n)]
            return RVector(values, self.attributes(flags))
        raise ValueError(f"R type {kind} is not supported by this reader")


def unserialize(data: bytes):
    return Reader(data).item()


def named(vector: RVector) -> dict:
    names = vector.attributes.get("names")
    if names is None or len(names) != len(vector):
        raise ValueError("the R list has no names")
    return dict(zip(names, vector))


def read_lazyload_db(rdx_path: str, rdb_path: str) -> dict:
    """Every variable of the data base, by name (character vectors come back as lists of str)."""
    index = named(unserialize(gzip.decompress(open(rdx_path, "rb").read())))
    blob = open(rdb_path, "rb").read()
    out = {}
    for name, (offset, size) in named(index["variables"]).items():
        chunk = blob[int(offset):int(offset) + int(size)]
        (expected,) = struct.unpack_from(">I", chunk, 0)
        data = zlib.decompress(chunk[4:])
        if len(data) != expected:
            raise ValueError(f"{rdb_path}: {name} decompressed to {len(data)} bytes, the header says {expected}")
        out[name] = unserialize(data)
    return out
