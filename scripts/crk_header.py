"""Parser for the cbindgen header include/crkernels.h (standard library only).

Shared by scripts/gen_julia.py and scripts/gen_fortran.py. It understands exactly the C
subset cbindgen writes for crkernels: `#define NAME value` constants, opaque handles
(`typedef struct crk_x crk_x;`), integer typedefs (`typedef int32_t crk_status;`), one
function-pointer typedef, `typedef struct NAME { fields } NAME;` and function prototypes
`RET crk_name(ARGS);`. Anything else it does not recognise is an error, so a header change
that the generators cannot follow fails loudly instead of being skipped.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "include" / "crkernels.h"


@dataclass
class CType:
    """A C type: a base name, its pointer levels (outermost last) and constness per level."""

    base: str  # e.g. "double", "crk_losses", "crk_photon_field", "char", "void"
    is_struct: bool = False  # written `struct X` in the header
    pointers: int = 0
    const_base: bool = False  # `const T *`
    array: int = 0  # `T name[N]` in a struct field

    def c(self):
        text = ("const " if self.const_base else "") + ("struct " if self.is_struct else "")
        return text + self.base + " *" * self.pointers


@dataclass
class Param:
    name: str
    ty: CType


@dataclass
class Function:
    name: str
    ret: CType
    params: list


@dataclass
class Struct:
    name: str
    fields: list


@dataclass
class Header:
    constants: list = field(default_factory=list)  # (name, text value)
    opaque: list = field(default_factory=list)
    int_typedefs: list = field(default_factory=list)  # (name, base)
    fn_typedefs: list = field(default_factory=list)
    structs: list = field(default_factory=list)
    functions: list = field(default_factory=list)

    def struct(self, name):
        return next((s for s in self.structs if s.name == name), None)


def _strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def parse_type(text):
    """Parses `const struct crk_x *const *` and the like into a CType (names excluded)."""
    text = text.strip()
    pointers = text.count("*")
    words = [w for w in re.split(r"[\s*]+", text) if w]
    const_base = bool(words) and words[0] == "const"
    words = [w for w in words if w != "const"]
    is_struct = bool(words) and words[0] == "struct"
    if is_struct:
        words = words[1:]
    if len(words) != 1:
        raise ValueError(f"cannot parse C type {text!r}")
    return CType(words[0], is_struct, pointers, const_base)


def _split_decl(decl):
    """`const double *x` -> (type text, name); `size_t stride[2]` -> (type, name, 2)."""
    decl = decl.strip()
    m = re.fullmatch(r"(.*?)([A-Za-z_]\w*)\s*(?:\[(\d+)\])?", decl, flags=re.S)
    if not m:
        raise ValueError(f"cannot parse declaration {decl!r}")
    ty = parse_type(m.group(1))
    if m.group(3):
        ty.array = int(m.group(3))
    return ty, m.group(2)


def parse(path=HEADER):
    text = _strip_comments(Path(path).read_text())
    header = Header()
    for name, value in re.findall(r"^#define\s+(CRK_\w+)\s+(\S+)\s*$", text, flags=re.M):
        header.constants.append((name, value))
    # Drop preprocessor lines and the extern "C" wrapper.
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    body = body.replace('extern "C" {', " ")
    body = re.sub(r"^\s*}\s*$", " ", body, flags=re.M)
    pos = 0
    statement_re = re.compile(r"\s*([^;{]*(?:\{[^}]*\}[^;]*)?);", re.S)
    while True:
        m = statement_re.match(body, pos)
        if not m:
            if body[pos:].strip():
                raise ValueError(f"unparsed header text: {body[pos:pos + 200]!r}")
            break
        pos = m.end()
        stmt = " ".join(m.group(1).split())
        if not stmt:
            continue
        sm = re.fullmatch(r"typedef struct (\w+) \{(.*)\} (\w+)", stmt)
        if sm:
            if sm.group(1) != sm.group(3):
                raise ValueError(f"struct tag and typedef differ: {stmt!r}")
            fields = [_split_decl(d) for d in sm.group(2).split(";") if d.strip()]
            header.structs.append(Struct(sm.group(1), [Param(n, t) for t, n in fields]))
            continue
        om = re.fullmatch(r"typedef struct (\w+) (\w+)", stmt)
        if om and om.group(1) == om.group(2):
            header.opaque.append(om.group(1))
            continue
        fm = re.fullmatch(r"typedef (.+?)\(\*(\w+)\)\((.*)\)", stmt)
        if fm:
            header.fn_typedefs.append(fm.group(2))
            continue
        im = re.fullmatch(r"typedef (\w+) (\w+)", stmt)
        if im:
            header.int_typedefs.append((im.group(2), im.group(1)))
            continue
        pm = re.fullmatch(r"(.+?)\b(crk_\w+)\((.*)\)", stmt)
        if pm:
            ret = parse_type(pm.group(1))
            args = pm.group(3).strip()
            params = []
            if args != "void":
                for decl in args.split(","):
                    ty, name = _split_decl(decl)
                    params.append(Param(name, ty))
            header.functions.append(Function(pm.group(2), ret, params))
            continue
        raise ValueError(f"unrecognised header statement: {stmt!r}")
    if not header.functions:
        raise ValueError("no functions found in the header")
    return header
