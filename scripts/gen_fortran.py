#!/usr/bin/env python3
"""Generates the raw part of bindings/fortran/crkernels.f90 from include/crkernels.h.

    python3 scripts/gen_fortran.py           # rewrite the generated section in place
    python3 scripts/gen_fortran.py --check   # exit 1 if the section differs from the header

Only the text between the lines `! BEGIN GENERATED (scripts/gen_fortran.py)` and
`! END GENERATED` is written: the constants, the bind(C) derived types mirroring the C
structs and one `bind(C, name="crk_...")` interface per C function. The rest of the module
(the error helpers, the handle-owning derived types with final procedures and the checked
procedures on assumed-shape arrays) is written by hand below the markers.

Mapping: handles -> type(c_ptr) (value; `**out` -> intent(out)), numeric pointers -> assumed-size
arrays (*) with intent(in) for `const`, else intent(out), except the out-pointers that hold one
value (SCALAR_OUT below) and the struct pointers that are arrays (STRUCT_ARRAYS); in the
*_gpu_device functions every float/double pointer is a DEVICE pointer: type(c_ptr), value.
uint64_t maps to integer(c_int64_t) (Fortran has no unsigned integers: seeds above 2^63 are
passed as their two's-complement value, which is the same bit pattern).
"""

import difflib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import crk_header  # noqa: E402

OUTPUT = crk_header.ROOT / "bindings" / "fortran" / "crkernels.f90"
BEGIN = "  ! BEGIN GENERATED (scripts/gen_fortran.py)"
END = "  ! END GENERATED"

KINDS = {
    "double": "real(c_double)",
    "float": "real(c_float)",
    "size_t": "integer(c_size_t)",
    "int8_t": "integer(c_int8_t)",
    "int16_t": "integer(c_int16_t)",
    "int32_t": "integer(c_int32_t)",
    "int64_t": "integer(c_int64_t)",
    "uint8_t": "integer(c_int8_t)",
    "uint16_t": "integer(c_int16_t)",
    "uint32_t": "integer(c_int32_t)",
    "uint64_t": "integer(c_int64_t)",
    "char": "character(kind=c_char)",
}

# Integer out-pointers are single values unless listed here; double out-pointers are arrays
# unless listed in SCALAR_OUT.
INTEGER_ARRAYS = {("crk_made_order", "order"), ("crk_network_input_shape", "shape")}
SCALAR_OUT = {
    ("crk_gamma_q", "q"),
    ("crk_gamma_p", "p"),
    ("crk_gamma_q_neg_log", "neg_log_q"),
    ("crk_chi2_pvalue", "p_value"),
    ("crk_chi2_neg_log_pvalue", "nll"),
}
# Struct pointers are single structs unless listed here.
STRUCT_ARRAYS = {
    ("crk_losses_new", "fields"),
    ("crk_isrf_preset_components", "fields"),
    ("crk_experiment_statistics", "results"),
    ("crk_modulation_fit", "species"),
    ("crk_modulation_fit", "normalisations"),
    ("crk_modulation_fit", "modulation"),
    ("crk_modulation_fit", "points"),
    ("crk_modulation_fit", "experiments"),
}
# Non-const arrays that are read as well as written.
INOUT = {
    ("crk_made_sample_given", "x"),
    ("crk_made_sample_given_gpu", "x"),
    ("crk_made_sample_given_from", "x"),
    ("crk_made_sample_given_gpu_from", "x"),
}


def base_kind(ty, header):
    if ty.base in KINDS:
        return KINDS[ty.base]
    if ty.base in dict(header.int_typedefs):
        return KINDS[dict(header.int_typedefs)[ty.base]]
    if header.struct(ty.base):
        return f"type({ty.base})"
    raise ValueError(f"no Fortran mapping for {ty.c()}")


def declaration(fn, p, header):
    """The dummy-argument declaration (without `:: name`) and the name suffix."""
    ty, key = p.ty, (fn.name, p.name)
    if ty.base in header.opaque:
        if ty.pointers == 1:
            return "type(c_ptr), value", ""
        if ty.pointers == 2:
            return "type(c_ptr), intent(out)", ""
    if ty.base in header.fn_typedefs and ty.pointers == 0:
        return "type(c_funptr), value", ""
    if ty.pointers == 0:
        return base_kind(ty, header) + ", value", ""
    if ty.base == "void" and ty.pointers == 1:
        return "type(c_ptr), value", ""
    if ty.pointers == 2:  # const float *const *inputs: an array of pointers
        return "type(c_ptr), intent(in)", "(*)"
    if ty.pointers != 1:
        raise ValueError(f"{fn.name}: no Fortran mapping for {ty.c()} {p.name}")
    if fn.name.endswith("_gpu_device") and ty.base in ("float", "double"):
        return "type(c_ptr), value", ""  # device memory
    intent = "intent(in)" if ty.const_base else ("intent(inout)" if key in INOUT else "intent(out)")
    kind = base_kind(ty, header)
    if header.struct(ty.base):
        return f"{kind}, {intent}", "(*)" if key in STRUCT_ARRAYS else ""
    if ty.base in ("char", "uint8_t", "float", "double"):
        scalar = key in SCALAR_OUT
        return f"{kind}, {intent}", "" if scalar else "(*)"
    # integer pointers
    if ty.const_base or key in INTEGER_ARRAYS:
        return f"{kind}, {intent}", "(*)"
    return f"{kind}, {intent}", ""


def wrap(first, words, last, indent):
    """`first(w1, w2, ...)` then `last`, continued with & to stay under 100 columns."""
    lines, line = [], indent + first + "("
    for i, w in enumerate(words):
        piece = w + (", " if i + 1 < len(words) else ")")
        if len(line) + len(piece) > 96:
            lines.append(line.rstrip() + " &")
            line = indent + "    "
        line += piece
    if not words:
        line += ")"
    lines.append(line + " &")
    lines.append(indent + "    " + last)
    return lines


def fortran_constant(value):
    if any(c in value for c in ".eE"):
        return "real(c_double)", value + "_c_double"
    return "integer(c_int32_t)", value


def generate_section(header):
    seen = {}

    def claim(name, what):
        low = name.lower()
        if low in seen:
            raise ValueError(f"{what} {name} clashes with {seen[low]} (Fortran is case-blind)")
        seen[low] = name

    out = [BEGIN, "  ! Do not edit by hand: regenerate with python3 scripts/gen_fortran.py.", ""]
    for name, value in header.constants:
        claim(name, "constant")
        kind, text = fortran_constant(value)
        out.append(f"  {kind}, parameter :: {name} = {text}")
    for s in header.structs:
        claim(s.name, "type")
        out += ["", f"  type, bind(C) :: {s.name}"]
        fields = set()
        for f in s.fields:
            if f.name.lower() in fields:
                raise ValueError(f"{s.name}: field {f.name} clashes (case)")
            fields.add(f.name.lower())
            if f.ty.pointers:
                kind = "type(c_ptr)"
            else:
                kind = base_kind(f.ty, header)
            dims = f"({f.ty.array})" if f.ty.array else ""
            out.append(f"    {kind} :: {f.name}{dims}")
        out.append(f"  end type {s.name}")
    out += ["", "  interface"]
    for fn in header.functions:
        claim(fn.name, "function")
        names = [p.name for p in fn.params]
        if len({n.lower() for n in names}) != len(names):
            raise ValueError(f"{fn.name}: arguments clash (case)")
        if fn.ret.base == "void" and fn.ret.pointers == 0:
            kw, result = "subroutine", None
        elif fn.ret.base == "char" and fn.ret.pointers == 1:
            kw, result = "function", "type(c_ptr)"
        elif fn.ret.base == "crk_status":
            kw, result = "function", "integer(c_int32_t)"
        else:
            raise ValueError(f"{fn.name}: unsupported return type {fn.ret.c()}")
        out += wrap(f"{kw} {fn.name}", names, f'bind(C, name="{fn.name}")', "    ")
        out.append("      import")
        for p in fn.params:
            decl, dims = declaration(fn, p, header)
            out.append(f"      {decl} :: {p.name}{dims}")
        if result:
            out.append(f"      {result} :: {fn.name}")
        out.append(f"    end {kw} {fn.name}")
    out += ["  end interface", END]
    return out


def render(current, header):
    lines = current.split("\n")
    try:
        start, stop = lines.index(BEGIN), lines.index(END)
    except ValueError:
        raise SystemExit(f"{OUTPUT}: the markers {BEGIN.strip()!r} / {END.strip()!r} are missing")
    return "\n".join(lines[:start] + generate_section(header) + lines[stop + 1:])


def main(argv):
    check = "--check" in argv[1:]
    current = OUTPUT.read_text()
    text = render(current, crk_header.parse())
    rel = OUTPUT.relative_to(crk_header.ROOT)
    if check:
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), str(rel), "from the header", lineterm=""
            )
            print("\n".join(list(diff)[:60]), file=sys.stderr)
            print(f"{rel} is out of date: run python3 scripts/gen_fortran.py", file=sys.stderr)
            return 1
        print(f"{rel}: generated section up to date")
        return 0
    OUTPUT.write_text(text)
    print(f"wrote the generated section of {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
