#!/usr/bin/env python3
"""Mutation testing of the explorer: how many small wrong variants of the core does
`cpuflags verify` reject?

Pipeline (see README.md beside this file):
  1. parse Sources/CPUFlags/*.swift of a revision into statements and generate mutants
     (ordering flips, dropped and swapped statements, comparison/logic changes,
     inverted conditions, off-by-one);
  2. write ONE scratch copy of the tree (outside the repo) in which every mutation site
     is guarded by `MutationSwitch.on(N)`, N read once from $CPUFLAGS_MUTANT ("mutant
     schemata"), and build it once; mutants whose variant does not type-check are
     dropped by the compiler's error lines and the schema is rebuilt;
  3. run the verify suites once per mutant with CPUFLAGS_MUTANT=N and classify it:
     killed, survived, not decided (timeout or incomplete run), did not compile.

Standard library only.
"""

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time

DEFAULT_SUITE = "verify --model sc --model tso --model pso --quiet --json --fail-fast"
CORE_DIR = "Sources/CPUFlags"
# Not mutated by default: HardwarePlatform is not what the explorer runs (it has its
# own model platform), and Ledger is the explorer's oracle (the "no lost work" check),
# not the protocol. `--file` overrides.
DEFAULT_EXCLUDED_FILES = ("HardwarePlatform.swift", "Ledger.swift")
SCRATCH_ROOT = "/tmp/cpuflags-mutants"

# Weaker orderings by access kind (swift-atomics: load orderings have no
# acquiringAndReleasing/releasing, store orderings no acquiring/acquiringAndReleasing).
WEAKER = {
    "load": {"sequentiallyConsistent": ["acquiring"], "acquiring": ["relaxed"]},
    "store": {"sequentiallyConsistent": ["releasing"], "releasing": ["relaxed"]},
    "update": {
        "sequentiallyConsistent": ["acquiringAndReleasing"],
        "acquiringAndReleasing": ["acquiring", "releasing"],
        "acquiring": ["relaxed"],
        "releasing": ["relaxed"],
    },
}
# When the access kind cannot be told from the call, the brief's plain mapping (the
# compiler then rejects what does not fit, reported as "did not compile").
WEAKER_UNKNOWN = {
    "sequentiallyConsistent": ["acquiringAndReleasing"],
    "acquiringAndReleasing": ["acquiring", "releasing"],
    "acquiring": ["relaxed"],
    "releasing": ["relaxed"],
}
ACCESS_KIND = {
    "load": "load", "waitUntil": "load", "store": "store",
    "exchange": "update", "compareExchange": "update", "fetchAdd": "update", "fetchOr": "update",
}
SWAP_OPERATOR = {"==": "!=", "!=": "==", "<": "<=", "<=": "<", ">": ">=", ">=": ">", "&&": "||", "||": "&&"}

CONTROL_RE = re.compile(r"^(if|guard|while|for|switch|do|repeat|else)\b")
TYPE_DECL_RE = re.compile(r"^(@\w+(\([^)]*\))?\s+|(public|private|fileprivate|internal|final|indirect)\s+)*"
                          r"(struct|enum|extension|protocol|class|actor)\b")
MEMBER_DECL_RE = re.compile(r"^(@\w+(\([^)]*\))?\s*|(public|private|fileprivate|internal|static|final|mutating|"
                            r"nonmutating|override|convenience|required|lazy)\s+)*"
                            r"(func|init|var|let|case|subscript|typealias|associatedtype|import|deinit)\b")
ATTRIBUTE_ONLY_RE = re.compile(r"^(@\w+(\([^)]*\))?\s*)+$")
SKIPPED_STMT_RE = re.compile(r"^(try\s+)?(assert|assertionFailure|precondition|preconditionFailure|fatalError|"
                             r"platform\.reached|platform\.check|platform\.limitExceeded)\b")
ASSIGN_RE = re.compile(r"^[\w.]+(\[[^\]]*\])?\s*(=|\+=|-=|\|=|&=|\^=|&\+=|&-=)\s")
DEAD_BRANCH_RE = re.compile(r"^(\}\s*)?(else\s+)?if (has\(\.\w+\)|plainStoreMutant) \{$")
# Bodies not mutated: text for people (descriptions, names), the layout self-check
# that only an `assert` reads, and the explorer's own oracle for "deferral is real".
NOT_CORE_RE = re.compile(r"\b(var description|var names?|layoutIsTiled|func deferralViolation)\b")


# --------------------------------------------------------------------------------------
# Lexing: comments and string literals


def scan(line):
    """Split one source line into (code, masked): `code` is the line without its `//`
    comment; `masked` is `code` with every string literal's contents replaced by `_`
    (same length), so that searching it for operators and brackets never looks inside
    a string. Handles escapes and `\\(...)` interpolations with nested strings."""
    code, masked = [], []
    i, n = 0, len(line)
    stack = []  # per open string: paren depth of the interpolation we are in, or None
    while i < n:
        c = line[i]
        in_string = bool(stack) and stack[-1] is None
        if in_string:
            if c == "\\" and i + 1 < n and line[i + 1] == "(":
                stack[-1] = 0  # inside an interpolation of this string
                code.append("\\("); masked.append("__"); i += 2
                continue
            if c == "\\" and i + 1 < n:
                code.append(line[i:i + 2]); masked.append("__"); i += 2
                continue
            if c == '"':
                stack.pop()
                code.append(c); masked.append(c); i += 1
                continue
            code.append(c); masked.append("_"); i += 1
            continue
        # code, possibly inside an interpolation (then masked as string too)
        interp = bool(stack)
        if not interp and line.startswith("//", i):
            break
        if c == '"':
            stack.append(None)
            code.append(c); masked.append('"' if not interp else "_"); i += 1
            continue
        if interp:
            if c == "(":
                stack[-1] += 1
            elif c == ")":
                if stack[-1] == 0:
                    stack[-1] = None  # back in the string
                else:
                    stack[-1] -= 1
            code.append(c); masked.append("_"); i += 1
            continue
        code.append(c); masked.append(c); i += 1
    return "".join(code).rstrip(), "".join(masked).rstrip()


def depth_delta(masked):
    """Net change of bracket depth ((), [], {}) over a masked code fragment."""
    return sum(masked.count(o) - masked.count(c) for o, c in ("()", "[]", "{}"))


def top_level_index(masked, token, start=0):
    """Index of the first occurrence of `token` in `masked` at bracket depth 0 (relative
    to `start`), or -1."""
    d = 0
    for i in range(start, len(masked)):
        ch = masked[i]
        if d == 0 and masked.startswith(token, i):
            return i
        if ch in "([{":
            d += 1
        elif ch in ")]}":
            d -= 1
    return -1


# --------------------------------------------------------------------------------------
# Parsing into statements


@dataclasses.dataclass
class Stmt:
    """One statement of the core as the schema sees it.

    `kind`: stmt (an ordinary statement, emitted as if/else), expr (the implicit return
    of a value-returning body, emitted as a ternary), decl (`let/var pat = E`, ternary on
    E), return, cond (the condition of an `if`/`guard`/`while` opener), member (a one-line
    member body `{ E }`), label (a `case P: S` whose body S is an ordinary statement), or
    skip (never mutated).
    `head`/`payload`/`tail`: the statement is head + payload lines + tail; mutations touch
    only the payload (lists of (line number, text)).
    """
    file: str
    first: int
    last: int
    kind: str
    indent: str
    head: str = ""
    payload: list = dataclasses.field(default_factory=list)
    tail: str = ""
    block: int = 0
    dead: bool = False
    droppable: bool = False


def parse_file(name, text):
    """Parse one Swift file into a list of Stmt (statements inside function bodies,
    openers with a mutable condition, one-line member bodies). Lines are 1-based.
    This is a line-oriented parser for the code style of this package (one statement
    per line, or a statement continued while brackets are open), not a Swift parser."""
    lines = text.split("\n")
    scanned = [scan(l) for l in lines]
    stmts = []
    # block stack: (kind, id, dead, returns_value); kinds: top, type, func, code, switch
    stack = [("top", 0, False, False)]
    next_block = 1
    # per block: how many statements it has (for spotting implicit returns)
    i = 0
    while i < len(lines):
        code, masked = scanned[i]
        stripped = code.strip()
        if not stripped:
            i += 1
            continue
        indent = code[: len(code) - len(code.lstrip())]
        # closing braces first
        lead = ""
        rest, rest_m = stripped, masked.strip()
        while rest.startswith("}"):
            if len(stack) > 1:
                stack.pop()
            lead += "}"
            rest, rest_m = rest[1:].lstrip(), rest_m[1:].lstrip()
            if rest:
                lead += " "
        if not rest:
            i += 1
            continue
        if ATTRIBUTE_ONLY_RE.match(rest):
            i += 1
            continue
        # statement extent: until brackets balance (or an opener's `{` is the one open)
        j, d = i, depth_delta(rest_m)
        text_m = rest_m
        while True:
            last_code = (scanned[j][0].strip() if j > i else rest)
            ends_cont = re.search(r"(,|\(|\[|=|&&|\|\||\?|:)$", last_code) is not None
            if d == 1 and last_code.endswith("{") and (CONTROL_RE.match(rest) or TYPE_DECL_RE.match(rest)
                                                       or MEMBER_DECL_RE.match(rest)):
                opener = True
                break
            if d <= 0 and not ends_cont and not (rest.startswith("guard ") and " else" not in text_m):
                opener = False
                break
            j += 1
            if j >= len(lines):
                raise ValueError(f"{name}:{i + 1}: statement never ends")
            d += depth_delta(scanned[j][1])
            text_m += " " + scanned[j][1].strip()
        kind_top, block_id, dead, returns_value = stack[-1]
        dead = dead or any(b[2] for b in stack)
        st = Stmt(name, i + 1, j + 1, "skip", indent, block=block_id, dead=dead)
        has_mutant_marker = any("has(." in scanned[k][0] for k in range(i, j + 1))
        if opener:
            header = rest
            if TYPE_DECL_RE.match(rest):
                bkind = "type"
            elif rest.startswith("switch "):
                bkind = "switch"
            elif CONTROL_RE.match(rest):
                bkind = "code"
            else:
                bkind = "func"
            full_header = " ".join(scanned[k][0].strip() for k in range(i, j + 1))
            value = bkind == "func" and ("->" in full_header or re.match(r"^.*\bvar\b", full_header) is not None)
            is_dead = DEAD_BRANCH_RE.match(stripped) is not None or NOT_CORE_RE.search(full_header) is not None
            stack.append((bkind, next_block, is_dead, value))
            next_block += 1
            if i == j and not has_mutant_marker:
                classify_cond(st, lead, header, code)
            stmts.append(st)
            i = j + 1
            continue
        if kind_top in ("top", "type"):
            if i == j and not has_mutant_marker:
                classify_member(st, rest, rest_m, code)
            stmts.append(st)
            i = j + 1
            continue
        if kind_top == "switch" and (rest.startswith("case ") or rest.startswith("default")):
            k = re.search(r":(\s|$)", rest_m)
            body = rest[k.end():].strip() if k else ""
            if k and body and i == j and not has_mutant_marker and not SKIPPED_STMT_RE.match(body):
                st.kind, st.head = "label", indent + lead + rest[: k.start() + 1]
                st.payload = [(i + 1, indent + "    " + body)]
                st.droppable = not body.startswith(("return", "break"))
                if body.startswith(("break", "fallthrough", "continue")):
                    st.kind = "skip"
            stmts.append(st)
            i = j + 1
            continue
        if not has_mutant_marker and not SKIPPED_STMT_RE.match(rest) and not lead:
            classify_statement(st, rest, rest_m, [(k + 1, scanned[k][0]) for k in range(i, j + 1)], returns_value)
        stmts.append(st)
        i = j + 1
    mark_implicit_returns(stmts, text)
    return stmts


def classify_cond(st, lead, header, code):
    """An opener line `if C {`, `} else if C {`, `guard C else {`, `while C {`: its
    condition C becomes the payload (not for optional binding, `case` patterns or
    several clauses)."""
    m = (re.match(r"^(else\s+if|if|while)\s+(.*)\s\{$", header)
         or re.match(r"^(guard)\s+(.*)\s(else\s*\{)$", header))
    if not m:
        return
    cond = m.group(2)
    cm = scan(cond)[1]
    if re.match(r"^(let|var|case)\b", cond) or top_level_index(cm, ",") >= 0:
        return
    indent = code[: len(code) - len(code.lstrip())]
    st.kind = "cond"
    st.head = indent + (lead + " " if lead else "") + m.group(1) + " "
    st.payload = [(st.first, cond)]
    st.tail = " else {" if m.group(1) == "guard" else " {"


def classify_member(st, rest, rest_m, code):
    """A one-line member with a body, `... var x: T { E }` or `... func f() -> T { E }`:
    E becomes the payload."""
    if not (MEMBER_DECL_RE.match(rest) and rest.endswith("}")):
        return
    k = top_level_index(rest_m, "{")
    if k < 0 or not rest_m.endswith("}") or top_level_index(rest_m, "}", k + 1) != len(rest_m) - 1 - 0 and False:
        return
    body = rest[k + 1:-1].strip()
    if not body or ";" in body or body.startswith(("get", "set", "return")) or "{" in body:
        return
    indent = code[: len(code) - len(code.lstrip())]
    st.kind, st.head, st.tail = "member", indent + rest[: k + 1], indent + "}"
    st.payload = [(st.first, indent + "    " + body)]


def classify_statement(st, rest, rest_m, lines, returns_value):
    """A statement inside a body: decl, return, stmt (droppable when it is a call,
    assignment or one-line `if`), or skip."""
    if re.match(r"^(let|var)\b", rest):
        k = top_level_index(rest_m, " = ")
        if k < 0:
            return
        first_line_no, first_code = lines[0]
        cut = len(first_code) - len(first_code.lstrip()) + k + 3
        st.kind, st.head = "decl", first_code[:cut]
        st.payload = [(first_line_no, first_code[cut:])] + lines[1:]
        return
    if re.match(r"^(break|continue|fallthrough|guard)\b", rest):
        return
    if re.match(r"^return\b", rest):
        if rest != "return":
            st.kind, st.payload = "return", lines
        return
    st.kind, st.payload = "stmt", lines
    # (not `self.x = x` of an init: Swift rejects an init that leaves a property unset)
    st.droppable = not rest.startswith("self.") and (rest.startswith(("try ", "_ = ", "if ")) or ASSIGN_RE.match(rest) is not None
                    or re.match(r"^\w+\.\w+\(", rest) is not None)


def mark_implicit_returns(stmts, _text):
    """A `stmt` that is the only statement of a value-returning body is its implicit
    return: emit it as a ternary and never drop or swap it."""
    by_block = {}
    for s in stmts:
        by_block.setdefault(s.block, []).append(s)
    for s in stmts:
        if s.kind == "stmt" and len(by_block[s.block]) == 1 and not s.payload[0][1].strip().startswith(("if ", "_ =")):
            if not ASSIGN_RE.match(s.payload[0][1].strip()):
                s.kind, s.droppable = "expr", False


# --------------------------------------------------------------------------------------
# Mutants


@dataclasses.dataclass
class Mutant:
    """One wrong variant: statement `stmts` (one, or two for a swap) with `payload` (the
    new payload lines of stmts[0]; for a swap, unused). `num` is what CPUFLAGS_MUTANT
    selects; `id` is stable across runs of the same revision."""
    id: str
    num: int
    op: str
    file: str
    line: int
    stmts: list
    payload: list
    before: str
    after: str


def line_mutations(text, masked):
    """Token-level mutations of one payload line: yields (op, label, new_text)."""
    # ordering flips
    for m in re.finditer(r"ordering: \.(\w+)", masked):
        x = m.group(1)
        calls = re.findall(r"\.(\w+)\(", masked[: m.start()])
        kind = next((ACCESS_KIND[c] for c in reversed(calls) if c in ACCESS_KIND), None)
        table = WEAKER[kind] if kind else WEAKER_UNKNOWN
        for y in table.get(x, []):
            s, e = m.start(1), m.end(1)
            yield "ordering", f".{x}->.{y}", text[:s] + y + text[e:]
    # comparisons and && / ||
    seen = {}
    for m in re.finditer(r"(?<= )(==|!=|<=|>=|<|>|&&|\|\|)(?= )", masked):
        op = m.group(1)
        seen[op] = seen.get(op, 0) + 1
        tag = f"{op}->{SWAP_OPERATOR[op]}" + (f"#{seen[op]}" if seen[op] > 1 else "")
        yield "cmp", tag, text[: m.start()] + SWAP_OPERATOR[op] + text[m.end():]
    # off-by-one
    for m in re.finditer(r"(?<= )(&\+|&-|\+|-) 1\b(?!\s*<<)", masked):
        yield "offbyone", f"{m.group(1)} 1->{m.group(1)} 0", text[: m.start()] + m.group(1) + " 0" + text[m.end():]


def inversion(st):
    """The inverted-condition payload of a statement, or None: a cond opener's C, a
    one-line `if C { S }`, or the one-expression body of a closure inside a
    multi-line statement."""
    if st.kind == "cond":
        n, c = st.payload[0]
        return [(n, "!(" + c + ")")]
    if st.kind == "stmt" and len(st.payload) == 1:
        n, t = st.payload[0]
        s = t.strip()
        if s.startswith("if ") and s.endswith("}") and " else" not in s:
            m = scan(s)[1]
            k = top_level_index(m, " {")
            cond = s[3:k]
            if k > 0 and not re.match(r"^(let|var|case)\b", cond) and top_level_index(scan(cond)[1], ",") < 0:
                ind = t[: len(t) - len(t.lstrip())]
                return [(n, ind + "if !(" + cond + ")" + s[k:])]
    if len(st.payload) >= 3:
        for idx in range(1, len(st.payload) - 1):
            prev, cur, nxt = (scan(st.payload[idx + o][1])[0].strip() for o in (-1, 0, 1))
            if (prev.endswith("{") or prev.endswith(" in")) and nxt.startswith("}") and cur and \
                    not re.match(r"^(return|let|var|try|_ =|if)\b", cur):
                n, t = st.payload[idx]
                ind = t[: len(t) - len(t.lstrip())]
                new = list(st.payload)
                new[idx] = (n, ind + "!(" + cur + ")")
                return new
    return None


def generate_mutants(sources):
    """All mutants of `sources` ({file name: text}), in a stable order (file, line,
    operator). Returns (mutants, parsed statements by file)."""
    mutants, parsed = [], {}
    ids = set()

    def add(op, label, st, payload, line, stmts=None, before="", after=""):
        mid = f"{st.file}:{line}:{op}" + (f":{label}" if label else "")
        base, k = mid, 2
        while mid in ids:
            mid, k = f"{base}#{k}", k + 1
        ids.add(mid)
        mutants.append(Mutant(mid, len(mutants) + 1, op, st.file, line, stmts or [st], payload, before, after))

    for name in sorted(sources):
        stmts = parse_file(name, sources[name])
        parsed[name] = stmts
        for st in stmts:
            if st.kind == "skip" or st.dead:
                continue
            for idx, (n, t) in enumerate(st.payload):
                code, masked = scan(t)
                for op, label, new in line_mutations(code, masked):
                    payload = list(st.payload)
                    payload[idx] = (n, new)
                    add(op, label, st, payload, n, before=code.strip(), after=new.strip())
            inv = inversion(st)
            if inv:
                changed = next(i for i in range(len(inv)) if inv[i] != st.payload[i])
                add("invert", "", st, inv, inv[changed][0],
                    before=st.payload[changed][1].strip(), after=inv[changed][1].strip())
            if st.droppable:
                add("drop", "", st, [], st.first, before=" ".join(t.strip() for _, t in st.payload), after="(nothing)")
        # swaps: adjacent droppable statements of one block
        for a, b in zip(stmts, stmts[1:]):
            if (a.droppable and b.droppable and a.kind == b.kind == "stmt" and a.block == b.block
                    and not a.dead and not b.dead):
                add("swap", str(b.first), a, [], a.first, stmts=[a, b],
                    before=" ".join(t.strip() for _, t in a.payload) + " ; " + " ".join(t.strip() for _, t in b.payload),
                    after="(the two in the other order)")
    mutants.sort(key=lambda m: (m.file, m.line, m.num))
    for k, m in enumerate(mutants):
        m.num = k + 1
    return mutants, parsed


# --------------------------------------------------------------------------------------
# Schema emission


SWITCH_SOURCE = '''\
// Generated by tools/mutation-test/mutate.py for a scratch copy of the tree; never committed.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The mutant-schema switch: the mutant selected by $CPUFLAGS_MUTANT (read once), or
/// none (0) when it is unset.
public enum MutationSwitch {
    @usableFromInline static let active: Int = {
        guard let p = getenv("CPUFLAGS_MUTANT") else { return 0 }
        return Int(String(cString: p)) ?? 0
    }()

    /// Whether mutant `id` is the active one.
    @inlinable @inline(__always) public static func on(_ id: Int) -> Bool { active == id }
}
'''


def emit_stmt(st, variants):
    """Emitted lines [(text, blame ids)] of one statement with its variants
    [(mutant num, payload)]. With no variants, the original payload lines."""
    ind = st.indent
    allids = {n for n, _ in variants}
    orig = [(t, set(allids)) for _, t in st.payload]
    on = lambda n: f"MutationSwitch.on({n})"
    out = []
    if not variants:
        return [(st.head, set())] * bool(st.head) + [(t, set()) for _, t in st.payload] + \
            [(st.tail, set())] * bool(st.tail and st.kind == "member")
    if st.kind in ("stmt", "return", "label"):
        if st.kind == "label":
            out.append((st.head, set(allids)))
        for k, (n, payload) in enumerate(variants):
            out.append((ind + ("if " if k == 0 else "} else if ") + on(n) + " {", set(allids)))
            out += [(t, {n}) for _, t in payload]
        out.append((ind + "} else {", set(allids)))
        out += orig
        out.append((ind + "}", set(allids)))
        return out
    if st.kind in ("expr", "decl", "member"):
        if st.kind == "decl":
            out.append((st.head.rstrip(), set(allids)))
        elif st.kind == "member":
            out.append((st.head, set(allids)))
        for n, payload in variants:
            out.append((ind + "    " + on(n) + " ? (", set(allids)))
            out += [(t, {n}) for _, t in payload]
            out.append((ind + "    ) :", set(allids)))
        out.append((ind + "    (", set(allids)))
        out += orig
        out.append((ind + "    )", set(allids)))
        if st.kind == "member":
            out.append((st.tail, set(allids)))
        return out
    if st.kind == "cond":
        out.append((st.head + "(", set(allids)))
        for n, payload in variants:
            out.append((ind + "    " + on(n) + " ? (", set(allids)))
            out += [(ind + "        " + t, {n}) for _, t in payload]
            out.append((ind + "    ) :", set(allids)))
        out.append((ind + "    (", set(allids)))
        out += [(ind + "        " + t, set(allids)) for _, t in st.payload]
        out.append((ind + "    ))" + st.tail, set(allids)))
        return out
    raise ValueError(f"no emission for kind {st.kind}")


def emit_file(name, text, stmts, mutants):
    """The schema'd text of one file, and a list `blame` (index: 1-based output line)
    of the mutant numbers each output line belongs to."""
    lines = text.split("\n")
    singles, swaps = {}, {}
    for m in mutants:
        if m.op == "swap":
            swaps.setdefault(m.stmts[0].first, []).append(m)
        else:
            singles.setdefault(m.stmts[0].first, []).append((m.num, m.payload))
    by_first = {s.first: s for s in stmts}
    out = [("", set())]  # index 0 unused: output lines are 1-based
    i = 1
    while i <= len(lines):
        st = by_first.get(i)
        if st is None or (st.first not in singles and st.first not in swaps):
            out.append((lines[i - 1], set()))
            i += 1
            continue
        if st.first not in swaps:
            out += emit_stmt(st, singles.get(st.first, []))
            i = st.last + 1
            continue
        # a swap: the two statements (each with its own variants) in the other order,
        # then in the original order; a statement in several swaps is chained below
        run = [st]
        while run[-1].first in swaps:
            run.append(swaps[run[-1].first][0].stmts[1])
        parts = [emit_stmt(s, singles.get(s.first, [])) for s in run]
        for k in range(len(run) - 1):
            w = swaps[run[k].first][0].num
            out.append((st.indent + ("if " if k == 0 else "} else if ") + f"MutationSwitch.on({w}) {{", {w}))
            order = list(range(len(run)))
            order[k], order[k + 1] = order[k + 1], order[k]
            for idx in order:
                out += [(t, b | {w}) for t, b in parts[idx]]
        out.append((st.indent + "} else {", set()))
        for p in parts:
            out += p
        out.append((st.indent + "}", set()))
        i = run[-1].last + 1
    return "\n".join(t for t, _ in out[1:]), [b for _, b in out]


# --------------------------------------------------------------------------------------
# Scratch tree and build


def git(repo, *args, text=True):
    """Run git in `repo` and return its stdout."""
    return subprocess.run(["git", "-C", repo] + list(args), check=True, capture_output=True, text=text).stdout


def read_sources(repo, rev, files):
    """{file name: text} of the core files at `rev` (all of Sources/CPUFlags/*.swift minus
    the default exclusions, or exactly `files` when given)."""
    names = [p.split("/")[-1] for p in git(repo, "ls-tree", "--name-only", f"{rev}:{CORE_DIR}").split()]
    names = [n for n in names if n.endswith(".swift")]
    chosen = files or [n for n in names if n not in DEFAULT_EXCLUDED_FILES]
    return {n: git(repo, "show", f"{rev}:{CORE_DIR}/{n}") for n in chosen}


def prepare_tree(repo, rev, scratch):
    """Make the scratch copy of `rev` (once): git archive, plus the repo's .build and
    Package.resolved copied in so that dependencies need no fetch and little rebuild."""
    tree = os.path.join(scratch, "tree")
    if os.path.isdir(tree):
        return tree
    os.makedirs(scratch, exist_ok=True)
    tmp = tree + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    archive = subprocess.run(["git", "-C", repo, "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
    # A linked worktree has no .build of its own: seed from the main checkout's.
    common = os.path.abspath(os.path.join(repo, git(repo, "rev-parse", "--git-common-dir").strip()))
    seeds = [d for d in (repo, os.path.dirname(common)) if os.path.isdir(os.path.join(d, ".build"))]
    seed = seeds[0] if seeds else repo
    if os.path.exists(os.path.join(seed, "Package.resolved")):
        shutil.copy2(os.path.join(seed, "Package.resolved"), tmp)
    if os.path.isdir(os.path.join(seed, ".build")):
        log(f"copying {seed}/.build into the scratch tree (saves fetching and building the dependencies)")
        subprocess.run(["cp", "-a", os.path.join(seed, ".build"), os.path.join(tmp, ".build")], check=True)
        try:
            os.remove(os.path.join(tmp, ".build", ".lock"))
        except FileNotFoundError:
            pass
        # Clang module caches record their absolute path and refuse to be moved.
        for root, dirs, _ in os.walk(os.path.join(tmp, ".build")):
            for d in [d for d in dirs if d == "ModuleCache"]:
                shutil.rmtree(os.path.join(root, d))
                dirs.remove(d)
    os.rename(tmp, tree)
    return tree


def write_schema(tree, sources, parsed, mutants):
    """Write the schema'd core files and MutationSwitch.swift into the scratch tree.
    Returns {file name: blame list} for mapping compiler errors back to mutants."""
    blames = {}
    for name, text in sources.items():
        mine = [m for m in mutants if m.file == name]
        out, blame = emit_file(name, text, parsed[name], mine)
        path = os.path.join(tree, CORE_DIR, name)
        if not os.path.exists(path) or open(path).read() != out:
            with open(path, "w") as f:
                f.write(out)
        blames[name] = blame
    switch = os.path.join(tree, CORE_DIR, "MutationSwitch.swift")
    if not os.path.exists(switch) or open(switch).read() != SWITCH_SOURCE:
        with open(switch, "w") as f:
            f.write(SWITCH_SOURCE)
    return blames


def other_swift_builds():
    """Pids of swift-build processes running now (anyone's)."""
    pids = []
    for d in os.listdir("/proc"):
        try:
            if d.isdigit() and open(f"/proc/{d}/comm").read().strip() == "swift-build":
                pids.append(int(d))
        except OSError:
            pass
    return pids


def build(tree):
    """`swift build -c release --product cpuflags` in the scratch tree, after waiting
    for any other swift build on the machine to end (one build at a time on 2 cores).
    Returns (ok, output, seconds of our build)."""
    while other_swift_builds():
        log("  waiting for another swift build to finish ...")
        time.sleep(10)
    t0 = time.time()
    p = subprocess.run(["swift", "build", "-c", "release", "--product", "cpuflags"], cwd=tree,
                       capture_output=True, text=True)
    return p.returncode == 0, p.stdout + p.stderr, time.time() - t0


def build_schema(tree, sources, parsed, mutants, cache):
    """Build the schema, dropping mutants the compiler rejects until it builds.
    `cache` (a JSON file) remembers the rejected ones for this revision and generator,
    so a second run starts from a schema that builds. Returns (kept mutants,
    {mutant num: first compiler error}, build seconds)."""
    rejected = {}
    if os.path.exists(cache):
        rejected = {int(k): v for k, v in json.load(open(cache)).items()}
    total = 0.0
    for attempt in range(8):
        kept = [m for m in mutants if m.num not in rejected]
        blames = write_schema(tree, sources, parsed, kept)
        log(f"building the schema ({len(kept)} mutants, attempt {attempt + 1}) ...")
        ok, output, secs = build(tree)
        total += secs
        log(f"  {'built' if ok else 'failed'} in {secs:.1f}s")
        if ok:
            with open(cache, "w") as f:
                json.dump(rejected, f, indent=1)
            return kept, rejected, total
        new = {}
        for m in re.finditer(r"/Sources/CPUFlags/([\w+]+\.swift):(\d+):\d+: error: (.*)", output):
            name, line, msg = m.group(1), int(m.group(2)), m.group(3)
            if "before being initialized" in msg:
                continue  # reported at the read, not at the mutant: see below
            for num in blames.get(name, [set()] * (line + 1))[line] if line < len(blames.get(name, [])) else []:
                new.setdefault(num, f"{name}:{line}: {msg}")
        # Definite initialization is reported where the variable is read, not at the
        # dropped (or moved) assignment: blame the drops and swaps that assign it.
        for m in re.finditer(r"/Sources/CPUFlags/([\w+]+\.swift):(\d+):\d+: error: (?:constant|variable) '(\w+)' "
                             r"(?:used|captured by a closure|passed by reference) before being initialized", output):
            name, var = m.group(1), m.group(3)
            for mu in kept:
                if mu.file == name and mu.op in ("drop", "swap") and re.search(rf"(^|; ){var} = ", mu.before):
                    new.setdefault(mu.num, f"{name}: '{var}' used before being initialized")
        if not new:
            sys.stderr.write(output[-6000:])
            raise SystemExit("the schema does not build and the errors name no mutant (see above)")
        log(f"  dropping {len(new)} mutants the compiler rejects")
        rejected.update(new)
    raise SystemExit("the schema still does not build after 8 attempts")


# --------------------------------------------------------------------------------------
# Running


LOG_LOCK = threading.Lock()


def log(msg):
    """Progress on stderr."""
    with LOG_LOCK:
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()


def run_suite(binary, suite, mutant_num, timeout):
    """Run one verify suite with CPUFLAGS_MUTANT=mutant_num (0: none). Returns a dict:
    status passed / killed / not decided, with the violation's details when killed."""
    env = dict(os.environ)
    if mutant_num:
        env["CPUFLAGS_MUTANT"] = str(mutant_num)
    else:
        env.pop("CPUFLAGS_MUTANT", None)
    t0 = time.time()
    p = subprocess.Popen([binary] + shlex.split(suite), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return {"status": "not decided", "why": f"timeout after {timeout}s", "seconds": time.time() - t0}
    secs = time.time() - t0
    if p.returncode == 64:
        raise SystemExit(f"verify rejected the arguments of suite {suite!r}: {err.strip()}")
    try:
        doc = json.loads(out)
    except json.JSONDecodeError:
        doc = None
    if doc is None:
        if p.returncode < 0:
            # A trap (precondition, force unwrap) in the mutated core: the run rejected it.
            tail = (err.strip().splitlines() or [""])[-1][:200]
            return {"status": "killed", "how": "crash", "invariant": f"crash (signal {-p.returncode})",
                    "scenario": None, "model": None, "message": tail, "seconds": secs}
        return {"status": "not decided", "why": f"exit {p.returncode} without JSON: {err.strip()[:200]}",
                "seconds": secs}
    reports = doc.get("reports", [])
    for r in reports:
        v = r.get("violation")
        if v:
            return {"status": "killed", "how": "violation", "scenario": r.get("scenario"), "model": r.get("model"),
                    "invariant": v.get("invariant"), "message": (v.get("message") or "").splitlines()[0][:300],
                    "seconds": secs}
    if doc.get("passed") and p.returncode == 0:
        return {"status": "passed", "seconds": secs}
    inc = next((f"{r.get('scenario')} {r.get('model')}: {r.get('incomplete')}" for r in reports if r.get("incomplete")),
               f"passed={doc.get('passed')}, exit {p.returncode}")
    return {"status": "not decided", "why": inc, "seconds": secs}


def run_mutant(binary, m, suites, timeout):
    """Run the suites on mutant m, stopping at the first that kills it. Returns its
    result record (status killed / survived / not decided)."""
    total, undecided = 0.0, None
    for suite in suites:
        r = run_suite(binary, suite, m.num, timeout)
        total += r["seconds"]
        if r["status"] == "killed":
            return dict(r, suite=suite, seconds=round(total, 2))
        if r["status"] == "not decided":
            undecided = undecided or dict(r, suite=suite)
    if undecided:
        return dict(undecided, seconds=round(total, 2))
    return {"status": "survived", "seconds": round(total, 2)}


def record(m, result, rev):
    """The JSON-lines record of one mutant."""
    return dict({"id": m.id, "num": m.num, "rev": rev, "op": m.op, "file": m.file, "line": m.line,
                 "before": m.before, "after": m.after}, **result)


def describe(r):
    """One progress phrase for a result record."""
    if r["status"] == "killed":
        if r.get("how") == "crash":
            return f"killed by a crash ({r.get('message', '')[:60]})"
        return f"killed by {r['scenario']} {str(r['model']).upper()} ({r['invariant']})"
    if r["status"] == "not decided":
        return f"not decided ({r.get('why', '')[:80]})"
    return r["status"]


def summary_markdown(records, rev, suites, extra):
    """The Markdown summary: totals, per operator and per file, then survivors (with
    their diff lines), undecided and rejected mutants."""
    def counts(rs):
        c = {k: sum(1 for r in rs if r["status"] == k) for k in ("killed", "survived", "not decided", "did not compile")}
        decided = c["killed"] + c["survived"] + c["not decided"]
        rate = f"{100.0 * c['killed'] / decided:.1f}%" if decided else "n/a"
        return [str(len(rs)), str(c["killed"]), str(c["survived"]), str(c["not decided"]), str(c["did not compile"]), rate]

    head = "| {} | mutations | killed | survived | not decided | did not compile | kill rate |\n|---|---:|---:|---:|---:|---:|---:|"
    out = [f"# Mutation testing of the explorer, revision {rev}", ""]
    out += [f"Suites: " + "; ".join(f"`{s}`" for s in suites), ""] + extra + [""]
    out += [head.format("set"), "| all | " + " | ".join(counts(records)) + " |", ""]
    for key, title in (("op", "operator"), ("file", "file")):
        out.append(head.format(title))
        for v in sorted({r[key] for r in records}):
            out.append(f"| {v} | " + " | ".join(counts([r for r in records if r[key] == v])) + " |")
        out.append("")
    crashes = [r for r in records if r.get("how") == "crash"]
    if crashes:
        out += [f"Of the killed, {len(crashes)} by a crash of the run (a trap in the mutated core), not a reported violation.", ""]
    for status, title in (("survived", "Survivors"), ("not decided", "Not decided"), ("did not compile", "Did not compile")):
        rs = [r for r in records if r["status"] == status]
        if not rs:
            continue
        out += [f"## {title} ({len(rs)})", ""]
        for r in rs:
            why = f" ({r.get('why', '')})" if status != "survived" else ""
            out += [f"- `{r['id']}`{why}", "  ```diff", f"  - {r['before']}", f"  + {r['after']}", "  ```"]
        out.append("")
    return "\n".join(out)


def main():
    """Command line: see --help and README.md."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", default=os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")),
                    help="the git repository (default: the one this script is in)")
    ap.add_argument("--rev", default="HEAD", help="revision to mutate (default HEAD)")
    ap.add_argument("--file", action="append", default=[], help="core file to mutate (repeatable; default all but "
                    + ", ".join(DEFAULT_EXCLUDED_FILES) + ")")
    ap.add_argument("--suite", action="append", default=[],
                    help=f'verify arguments, repeatable, run in order (default: "{DEFAULT_SUITE}")')
    ap.add_argument("--list", action="store_true", help="print the mutants and exit")
    ap.add_argument("--only", action="append", default=[], help="mutant id or substring (repeatable)")
    ap.add_argument("--limit", type=int, help="run at most this many mutants")
    ap.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per suite run (default 600)")
    ap.add_argument("--results", default="mutation-results.jsonl", help="JSON-lines output (truncated first)")
    ap.add_argument("--resume", metavar="FILE", help="append to FILE and skip the mutants already in it")
    ap.add_argument("--summary", help="also write the Markdown summary to this file")
    ap.add_argument("--report", metavar="FILE", help="only print (and with --summary write) the summary of the "
                    "results in FILE, without building or running anything")
    ap.add_argument("--skip-baseline", action="store_true",
                    help="do not check that the schema build with no mutant passes the suites")
    ap.add_argument("--scratch", default=SCRATCH_ROOT, help=f"scratch root (default {SCRATCH_ROOT})")
    args = ap.parse_args()
    suites = args.suite or [DEFAULT_SUITE]
    started = time.time()

    rev = git(args.repo, "rev-parse", args.rev).strip()
    sources = read_sources(args.repo, rev, args.file)
    mutants, parsed = generate_mutants(sources)
    selected = [m for m in mutants if not args.only or any(o == m.id or o in m.id for o in args.only)]
    if args.list:
        for m in selected:
            print(f"{m.num:4d} {m.id}\n       - {m.before}\n       + {m.after}")
        print(f"{len(selected)} mutants", file=sys.stderr)
        return

    if args.report:
        recs = {}
        for line in open(args.report):
            if line.strip():
                r = json.loads(line)
                recs[r["id"]] = r
        records = [recs[m.id] for m in selected if m.id in recs]
        extra = [f"{len(records)} of the {len(selected)} mutants of this revision have results in {args.report}"
                 + ("." if len(records) == len(selected) else "; the others were not run yet (resume with --resume).")]
        secs = sum(r.get("seconds", 0) for r in records)
        extra.append(f"Sum of the per-mutant run times: {secs:.0f}s.")
        md = summary_markdown(records, rev[:12], suites, extra)
        print(md)
        if args.summary:
            with open(args.summary, "w") as f:
                f.write(md + "\n")
        return

    # The compiler's rejections are cached per exact mutant set (ids and variant text).
    generator = hashlib.sha256(json.dumps([(m.id, m.payload) for m in mutants]).encode()).hexdigest()[:12]
    scratch = os.path.join(args.scratch, rev[:12])
    tree = prepare_tree(args.repo, rev, scratch)
    kept, rejected, build_secs = build_schema(tree, sources, parsed, mutants,
                                              os.path.join(scratch, f"rejected-{generator}.json"))
    binary = os.path.join(tree, ".build", "release", "cpuflags")
    extra = [f"Schema: {len(kept)} mutants in one build ({build_secs:.0f}s of builds this run); "
             f"{len(rejected)} rejected by the compiler."]

    if not args.skip_baseline:
        log("baseline: the schema build with CPUFLAGS_MUTANT unset must pass every suite")
        for suite in suites:
            r = run_suite(binary, suite, 0, args.timeout)
            log(f"  {suite}: {r['status']} in {r['seconds']:.1f}s")
            if r["status"] != "passed":
                raise SystemExit(f"baseline failed: {describe(r)}; the schema changes the correct core")
            extra.append(f"Baseline (no mutant) `{suite}`: passed in {r['seconds']:.1f}s.")

    path = args.resume or args.results
    done = {}
    if args.resume and os.path.exists(path):
        for line in open(path):
            if line.strip():
                r = json.loads(line)
                done[r["id"]] = r
    else:
        open(path, "w").close()
    todo = [m for m in selected if m.id not in done]
    if args.limit is not None:
        todo = todo[: args.limit]
    out_lock = threading.Lock()

    def save(rec):
        with out_lock:
            with open(path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            done[rec["id"]] = rec

    for m in todo:
        if m.num in rejected:
            save(record(m, {"status": "did not compile", "why": rejected[m.num], "seconds": 0}, rev))
    runnable = [m for m in todo if m.num not in rejected]
    counter = [0]

    def work(m):
        rec = record(m, run_mutant(binary, m, suites, args.timeout), rev)
        save(rec)
        with out_lock:
            counter[0] += 1
            k = counter[0]
        log(f"[{k}/{len(runnable)}] {m.id} ... {describe(rec)} in {rec['seconds']:.1f}s")
        return rec

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(work, runnable))

    records = [done[m.id] for m in selected if m.id in done]
    extra.append(f"Run: {len(runnable)} mutants run in {time.time() - started:.0f}s wall time "
                 f"(jobs {args.jobs}, timeout {args.timeout:.0f}s per suite).")
    md = summary_markdown(records, rev[:12], suites, extra)
    print(md)
    if args.summary:
        with open(args.summary, "w") as f:
            f.write(md + "\n")


if __name__ == "__main__":
    main()
