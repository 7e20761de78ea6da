#!/usr/bin/env python3
"""Generates include/crkernels.hpp (the C++17 wrapper) from include/crkernels.h.

Every exported crk_ function gets a checked wrapper in namespace crk that calls it by its
literal name (`::crk_name(`); handles get move-only RAII owners. Run after regenerating
crkernels.h:  python3 scripts/gen_cpp_header.py   (--check: only verify it is up to date)
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLES = ["losses", "transport", "ensemble", "made", "made_trainer", "network", "surrogate"]

# Functions with exactly one trailing out-parameter that is a single value or struct (not an
# array): they also get an overload returning that value.
SCALAR_OUT = {
    "crk_gamma_q", "crk_gamma_p", "crk_gamma_q_neg_log", "crk_chi2_pvalue",
    "crk_chi2_neg_log_pvalue", "crk_polynomial_feature_count", "crk_device_count",
    "crk_source_spectrum_from_energy", "crk_network_input_count", "crk_network_output_size",
    "crk_surrogate_get_info", "crk_conv1d_output_length", "crk_made_trainer_finished",
    "crk_made_trainer_report",
}


def parse(header):
    body = header[header.index('extern "C" {'):]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    out = []
    for ret, name, args in re.findall(r"^([a-z][\w ]*?\**)\s*(crk_\w+)\((.*?)\);", body, flags=re.S | re.M):
        params = []
        args = " ".join(args.split())
        if args != "void":
            for a in args.split(","):
                a = a.strip()
                m = re.match(r"(.*?)(\w+)$", a)
                params.append((m.group(1).replace("struct ", "").strip(), m.group(2)))
        out.append((" ".join(ret.split()), name, params))
    return out


def handle_of(ptype):
    m = re.match(r"(const )?crk_(\w+) \*{1,2}$", ptype)
    if m and m.group(2) in HANDLES:
        return m.group(2)
    return None


def decl(params):
    return ", ".join(f"{t}{'' if t.endswith('*') else ' '}{n}" for t, n in params)


def gen(functions):
    raw, factories, methods = [], [], {h: [] for h in HANDLES}
    covered = set()
    for ret, name, params in functions:
        short = name[len("crk_"):]
        if ret == "const char *":
            raw.append(f"/// Wraps {name}.\ninline const char *{short}() noexcept {{ return ::{name}(); }}\n")
            covered.add(name)
            continue
        if ret == "void" and not name.endswith("_free"):  # infallible fills (crk_*_options_default)
            args = ", ".join(n for _, n in params)
            raw.append(f"/// Wraps {name}.\ninline void {short}({decl(params)}) noexcept {{ ::{name}({args}); }}\n")
            covered.add(name)
            continue
        if ret == "void":  # crk_*_free: called by the owners' destructors
            continue
        assert ret == "crk_status", (ret, name)
        args = ", ".join(n for _, n in params)
        last_t, last_n = params[-1]
        # The handle out-parameter (`crk_x **out`), usually last; crk_made_train has its
        # report after it.
        out_at = next((i for i, (t, _) in enumerate(params) if t.endswith("**") and handle_of(t)), None)
        out_handle = handle_of(params[out_at][0]) if out_at is not None else None
        if out_handle:
            out_n = params[out_at][1]
            args = ", ".join(("&" + n) if i == out_at else n for i, (_, n) in enumerate(params))
            ins = params[:out_at] + params[out_at + 1:]
            factories.append(
                f"/// Wraps {name}; the result owns the new handle.\n"
                f"inline {out_handle} {short}({decl(ins)}) {{\n"
                f"    crk_{out_handle} *{out_n} = nullptr;\n"
                f"    detail::check(::{name}({args}), \"{name}\");\n"
                f"    return {out_handle}({out_n});\n}}\n")
        else:
            raw.append(
                f"/// Wraps {name}; throws crk::error on failure.\n"
                f"inline void {short}({decl(params)}) {{\n"
                f"    detail::check(::{name}({args}), \"{name}\");\n}}\n")
            if name in SCALAR_OUT:
                t = last_t[:-1].strip()
                ins = params[:-1]
                call = ", ".join([n for _, n in ins] + ["&value"])
                raw.append(
                    f"/// Wraps {name}, returning the value.\n"
                    f"inline {t} {short}({decl(ins)}) {{\n"
                    f"    {t} value{{}};\n"
                    f"    {short}({call});\n"
                    f"    return value;\n}}\n")
            h = handle_of(params[0][0])
            if h:
                # Functions on a `const crk_x *` are const methods; those that change the
                # handle (crk_made_trainer_epoch, _resume) are non-const methods.
                qual = " const" if params[0][0].startswith("const") else ""
                mname = short[len(h) + 1:] if short.startswith(h + "_") else short
                rest = params[1:]
                margs = ", ".join(["h_"] + [n for _, n in rest])
                methods[h].append(
                    f"    /// {name} on this handle.\n"
                    f"    void {mname}({decl(rest)}){qual} {{ crk::{short}({margs}); }}\n")
                if name in SCALAR_OUT:
                    t = rest[-1][0][:-1].strip()
                    margs = ", ".join(["h_"] + [n for _, n in rest[:-1]])
                    methods[h].append(
                        f"    /// {name} on this handle, returning the value.\n"
                        f"    {t} {mname}({decl(rest[:-1])}){qual} {{ return crk::{short}({margs}); }}\n")
        covered.add(name)
    return raw, factories, methods, covered


def main():
    header = (ROOT / "include/crkernels.h").read_text()
    functions = parse(header)
    raw, factories, methods, _ = gen(functions)
    template = (ROOT / "scripts/crkernels.hpp.in").read_text()
    classes = []
    for h in HANDLES:
        extra = "@EXTRA_" + h.upper() + "@"
        classes.append(f"""/// Owns a crk_{h} handle (move-only); the destructor calls crk_{h}_free.
class {h} {{
public:
    {h}() noexcept = default;
    /// Adopts `handle` (made by the C API); it is freed by this owner.
    explicit {h}(crk_{h} *handle) noexcept : h_(handle) {{}}
    ~{h}() {{ ::crk_{h}_free(h_); }}
    {h}(const {h} &) = delete;
    {h} &operator=(const {h} &) = delete;
    {h}({h} &&other) noexcept : h_(other.h_) {{ other.h_ = nullptr; }}
    {h} &operator=({h} &&other) noexcept {{
        if (this != &other) {{
            ::crk_{h}_free(h_);
            h_ = other.h_;
            other.h_ = nullptr;
        }}
        return *this;
    }}
    /// The C handle (still owned by this object); NULL when empty or moved from.
    crk_{h} *get() const noexcept {{ return h_; }}
    /// Gives up ownership: the caller must crk_{h}_free the result.
    crk_{h} *release() noexcept {{
        crk_{h} *h = h_;
        h_ = nullptr;
        return h;
    }}
    /// Frees the handle now (idempotent).
    void reset() noexcept {{
        ::crk_{h}_free(h_);
        h_ = nullptr;
    }}
    explicit operator bool() const noexcept {{ return h_ != nullptr; }}

{''.join(methods[h])}{extra}
private:
    crk_{h} *h_ = nullptr;
}};
""")
    text = template.replace("@RAW@", "\n".join(raw)).replace("@CLASSES@", "\n".join(classes))
    text = text.replace("@FACTORIES@", "\n".join(factories))
    extras = dict(re.findall(r"^@@(\w+)\n(.*?)^@@end\n", text, flags=re.S | re.M))
    text = re.sub(r"^@@(\w+)\n(.*?)^@@end\n", "", text, flags=re.S | re.M)
    for h in HANDLES:
        text = text.replace("@EXTRA_" + h.upper() + "@", extras.get(h, ""))
    missing = [n for _, n, _ in functions if f"::{n}(" not in text]
    if missing:
        sys.exit(f"not wrapped: {missing}")
    target = ROOT / "include/crkernels.hpp"
    if "--check" in sys.argv[1:]:
        if not target.exists() or target.read_text() != text:
            sys.exit("include/crkernels.hpp is stale: run python3 scripts/gen_cpp_header.py")
        print(f"include/crkernels.hpp is up to date ({len(functions)} functions)")
        return
    target.write_text(text)
    print(f"wrote include/crkernels.hpp ({len(functions)} functions)")


if __name__ == "__main__":
    main()
