"""A cmd.exe subset: enough batch language for kremove's Windows playbooks, with cmd's own rules.

What it keeps from cmd.exe, because the playbooks' quoting depends on it:
- percent expansion runs first, over a whole line (or a whole parenthesised block): ``%VAR%``,
  ``%%`` -> ``%`` in a batch file, ``%0``..``%9``, ``%~f0``, ``%*``, ``%ERRORLEVEL%``; an
  undefined variable expands to nothing in a batch file and stays as written on a command line;
- then carets escape the next character outside double quotes, and ``& && || | < > ( )`` are
  operators only outside quotes and unescaped (``(`` only where a command starts);
- FOR variables are substituted after parsing, so what they hold is never parsed again;
- ``if`` and ``for`` bodies take the rest of the line, ``&`` included.

Built in: echo, set (``"N=V"``, ``/a``), setlocal/endlocal, if (exist, defined, errorlevel,
``==``, EQU..GEQ, /i, not, else), for /f (usebackq, tokens, delims, skip, eol), goto (and
``:eof``), exit [/b], call, rem, type, del, cd, ver. Programs: see ``programs.py``. Anything else
is "not recognized", exit 9009, as on Windows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .windows import Machine

NOT_RECOGNIZED = (
    "'{0}' is not recognized as an internal or external command,\r\n"
    "operable program or batch file.\r\n"
)
TERMINATED_EXIT = -1073741510  # 0xC000013A STATUS_CONTROL_C_EXIT, as a terminated process shows


class Terminated(Exception):
    """The client signalled the command to terminate."""


class ExitCmd(Exception):
    """``exit`` without /b: the whole cmd.exe process ends."""

    def __init__(self, code: int) -> None:
        self.code = code


class NeedMore(Exception):
    """A parenthesised block is still open at the end of the text: read the next line."""


# -- output sinks ---------------------------------------------------------------------------------


class Sink:
    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class NulSink(Sink):
    def write(self, data: bytes) -> None:
        pass


class BufferSink(Sink):
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


class ProcSink(Sink):
    def __init__(self, proc: Any, stream: str) -> None:
        self.proc, self.stream = proc, stream

    def write(self, data: bytes) -> None:
        self.proc.write(self.stream, data)


class FileSink(Sink):
    def __init__(self, machine: Machine, path: str, append: bool) -> None:
        self.machine, self.path = machine, path
        self.data = bytearray(machine.read_file(path) or b"") if append else bytearray()
        machine.write_file(path, bytes(self.data))  # created (or truncated) at once, as cmd does

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        self.machine.write_file(self.path, bytes(self.data))


@dataclass
class Io:
    out: Sink
    err: Sink
    stdin: bytes | None = None  # None: the process's own stdin (the WinRM stream)


# -- the syntax tree ------------------------------------------------------------------------------


@dataclass
class Redir:
    fd: int  # 0 (<), 1, 2
    target: str  # a file name, or "&1" / "&2"
    append: bool = False


@dataclass
class Simple:
    text: str  # the command with carets applied and quotes kept; redirections removed
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class Block:
    body: Node
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class If:
    negate: bool
    ignore_case: bool
    kind: str  # exist | defined | errorlevel | == | EQU | NEQ | LSS | LEQ | GTR | GEQ
    left: str
    right: str
    then: Node
    otherwise: Node | None = None


@dataclass
class For:
    options: str
    var: str
    source: str  # the text between the parentheses of "in (...)"
    body: Node


@dataclass
class Seq:
    items: list[tuple[str, Node]]  # (operator before it: "", "&", "&&", "||" or "\n", node)


@dataclass
class Pipe:
    parts: list[Node]


Node = Simple | Block | If | For | Seq | Pipe

_OPS = "&|<>()"


class Parser:
    """Parses one expanded line (or block of lines) into a ``Node``; raises NeedMore."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.depth = 0

    def parse(self) -> Node:
        node = self.sequence()
        if self.i < len(self.s):
            # A stray ")" at the top level is ignored by cmd; so is what follows on that line.
            pass
        return node

    # character helpers
    def peek(self, n: int = 0) -> str:
        j = self.i + n
        return self.s[j] if j < len(self.s) else ""

    def at(self, chars: str, n: int = 0) -> bool:
        ch = self.peek(n)
        return ch != "" and ch in chars

    def skip_space(self, newlines: bool = False) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1
        while newlines and self.peek() == "\n":
            self.i += 1
            self.skip_space(newlines=True)

    def sequence(self) -> Node:
        items: list[tuple[str, Node]] = []
        op = ""
        while True:
            self.skip_space(newlines=self.depth > 0)
            if self.i >= len(self.s):
                if self.depth > 0:
                    raise NeedMore()
                break
            ch = self.peek()
            if ch == ")" and self.depth > 0:
                break
            if ch == "\n":
                break
            items.append((op, self.pipeline()))
            self.skip_space()
            ch = self.peek()
            if ch == "&":
                op = "&&" if self.peek(1) == "&" else "&"
                self.i += len(op)
            elif ch == "|" and self.peek(1) == "|":
                op = "||"
                self.i += 2
            elif ch == "\n" and self.depth > 0:
                op = "\n"
                self.i += 1
            else:
                break
        if len(items) == 1:
            return items[0][1]
        return Seq(items)

    def pipeline(self) -> Node:
        parts = [self.command()]
        while self.peek() == "|" and self.peek(1) != "|":
            self.i += 1
            parts.append(self.command())
        return parts[0] if len(parts) == 1 else Pipe(parts)

    def command(self) -> Node:
        self.skip_space()
        while self.peek() == "@":
            self.i += 1
            self.skip_space()
        pre: list[Redir] = []
        while self.at("<>") or (self.at("12") and self.peek(1) == ">"):
            pre.append(self.redirection())
            self.skip_space()
        if self.peek() == "(":
            self.i += 1
            self.depth += 1
            body = self.sequence()
            if self.peek() != ")":
                raise NeedMore()
            self.i += 1
            self.depth -= 1
            redirs = pre
            self.skip_space()
            while self.at("<>") or (self.at("12") and self.peek(1) == ">"):
                redirs.append(self.redirection())
                self.skip_space()
            return Block(body, redirs)
        word = self.s[self.i : self.i + 4].lower()
        if word[:3] == "if " or word[:3] == "if\t":
            return self.if_command()
        if word == "for " or word == "for\t":
            return self.for_command()
        simple = self.simple()
        simple.redirs[:0] = pre
        return simple

    def simple(self) -> Simple:
        text: list[str] = []
        redirs: list[Redir] = []
        quoted = False
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch == "\n":
                break
            if quoted:
                text.append(ch)
                self.i += 1
                if ch == '"':
                    quoted = False
                continue
            if ch == '"':
                quoted = True
                text.append(ch)
                self.i += 1
                continue
            if ch == "^":
                if self.i + 1 < len(self.s) and self.s[self.i + 1] != "\n":
                    text.append("\x00" + self.s[self.i + 1])  # escaped: literal
                    self.i += 2
                else:
                    self.i += 1
                continue
            if ch in "&|":
                break
            if ch == ")" and self.depth > 0:
                break
            if ch in "<>":
                fd_here = (
                    bool(text)
                    and text[-1] in ("1", "2")
                    and (len(text) == 1 or text[-2] in (" ", "\t"))
                )
                if fd_here:
                    fd = text.pop()
                    redirs.append(self.redirection(int(fd)))
                else:
                    redirs.append(self.redirection())
                continue
            text.append(ch)
            self.i += 1
        joined = "".join(t[-1] if t.startswith("\x00") else t for t in text)
        return Simple(joined.lstrip(" \t"), redirs)

    def redirection(self, fd: int | None = None) -> Redir:
        if fd is None and self.at("12") and self.at("<>", 1):
            fd = int(self.peek())
            self.i += 1
        ch = self.peek()
        self.i += 1
        if ch == "<":
            fd = 0
            append = False
        else:
            fd = 1 if fd is None else fd
            append = self.peek() == ">"
            if append:
                self.i += 1
        if self.peek() == "&":
            self.i += 1
            target = "&" + self.peek()
            self.i += 1
            return Redir(fd, target, append)
        self.skip_space()
        return Redir(fd, self.word(), append)

    def word(self) -> str:
        """A file name or operand: a quoted string (quotes kept) or a run of non-space."""
        out: list[str] = []
        quoted = False
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch == "\n":
                break
            if ch == '"':
                quoted = not quoted
                out.append(ch)
                self.i += 1
                continue
            if not quoted:
                if ch in " \t" or ch in "&|<>" or (ch == ")" and self.depth > 0):
                    break
                if ch == "^" and self.i + 1 < len(self.s):
                    out.append(self.s[self.i + 1])
                    self.i += 2
                    continue
            out.append(ch)
            self.i += 1
        return "".join(out)

    def operand(self) -> str:
        """An IF operand: ends at whitespace or at "==" (outside quotes)."""
        out: list[str] = []
        quoted = False
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch == "\n":
                break
            if ch == '"':
                quoted = not quoted
            elif not quoted:
                if ch in " \t" or self.s.startswith("==", self.i):
                    break
                if ch == "^" and self.i + 1 < len(self.s):
                    out.append(self.s[self.i + 1])
                    self.i += 2
                    continue
            out.append(ch)
            self.i += 1
        return "".join(out)

    def keyword(self, *words: str) -> str | None:
        for word in words:
            end = self.i + len(word)
            if self.s[self.i : end].lower() == word and (
                end >= len(self.s) or self.s[end] in " \t"
            ):
                self.i = end
                self.skip_space()
                return word
        return None

    def if_command(self) -> If:
        self.i += 2
        self.skip_space()
        ignore_case = bool(self.keyword("/i"))
        negate = bool(self.keyword("not"))
        kind = self.keyword("exist", "defined", "errorlevel")
        if kind is not None:
            left, right = self.word(), ""
        else:
            left = self.operand()
            self.skip_space()
            if self.s.startswith("==", self.i):
                self.i += 2
                while self.peek() == "=":
                    self.i += 1
                kind = "=="
            else:
                op = self.operand().upper()
                if op not in ("EQU", "NEQ", "LSS", "LEQ", "GTR", "GEQ"):
                    raise SyntaxError(f"{op} was unexpected at this time.")
                kind = op
            self.skip_space()
            right = self.operand()
        self.skip_space()
        then = self.command_or_sequence()
        otherwise = None
        save = self.i
        self.skip_space()
        if isinstance(then, Block) and self.keyword("else"):
            otherwise = self.command_or_sequence()
        else:
            self.i = save
        return If(negate, ignore_case, kind, left, right, then, otherwise)

    def command_or_sequence(self) -> Node:
        """An IF/FOR body: a block, or the rest of the line (``&`` included)."""
        if self.peek() == "(":
            return self.command()
        items: list[tuple[str, Node]] = [("", self.pipeline())]
        while True:
            self.skip_space()
            ch = self.peek()
            if ch == "&":
                op = "&&" if self.peek(1) == "&" else "&"
                self.i += len(op)
            elif ch == "|" and self.peek(1) == "|":
                op = "||"
                self.i += 2
            else:
                break
            items.append((op, self.pipeline()))
        return items[0][1] if len(items) == 1 else Seq(items)

    def for_command(self) -> For:
        self.i += 3
        self.skip_space()
        if not self.keyword("/f"):
            raise SyntaxError("only for /f is emulated")
        options = ""
        if self.peek() == '"':
            end = self.s.index('"', self.i + 1)
            options = self.s[self.i + 1 : end]
            self.i = end + 1
            self.skip_space()
        if self.peek() != "%":
            raise SyntaxError(f"{self.s[self.i : self.i + 3]} was unexpected at this time.")
        var = self.s[self.i + 1]
        self.i += 2
        self.skip_space()
        if not self.keyword("in"):
            raise SyntaxError("in was unexpected at this time.")
        if self.peek() != "(":
            raise SyntaxError("( was expected")
        self.i += 1
        source: list[str] = []
        quoted = False
        while True:
            if self.i >= len(self.s):
                raise NeedMore()
            ch = self.s[self.i]
            if ch == '"':
                quoted = not quoted
            elif not quoted and ch == "^" and self.i + 1 < len(self.s):
                source.append(self.s[self.i + 1])
                self.i += 2
                continue
            elif not quoted and ch == ")":
                self.i += 1
                break
            source.append(ch)
            self.i += 1
        self.skip_space()
        if not self.keyword("do"):
            raise SyntaxError("do was unexpected at this time.")
        body = self.command_or_sequence()
        return For(options, var, "".join(source).strip(), body)


# -- the interpreter ------------------------------------------------------------------------------


class Env:
    """Environment variables: names case-insensitive, the first spelling kept."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = {k.upper(): (k, v) for k, v in values.items()}

    def copy(self) -> Env:
        env = Env({})
        env.values = dict(self.values)
        return env

    def get(self, name: str) -> str | None:
        entry = self.values.get(name.upper())
        return None if entry is None else entry[1]

    def set(self, name: str, value: str | None) -> None:
        if value is None or value == "":
            self.values.pop(name.upper(), None)
        else:
            self.values[name.upper()] = (self.values.get(name.upper(), (name, ""))[0], value)

    def items(self) -> list[tuple[str, str]]:
        return sorted(self.values.values(), key=lambda kv: kv[0].upper())


@dataclass
class BatchFrame:
    path: str
    args: list[str]
    lines: list[str]
    pc: int = 0
    locals: list[Env] = field(default_factory=list)


class Cmd:
    """One cmd.exe process."""

    def __init__(
        self,
        machine: Machine,
        proc: Any,
        env: Env,
        codepage: int,
        run_program: Callable[[Cmd, str, str, Io], int],
    ) -> None:
        self.machine = machine
        self.proc = proc
        self.env = env
        self.codepage = codepage
        self.errorlevel = 0
        self.echo = True
        self.run_program = run_program
        self.frame: BatchFrame | None = None

    # -- encoding ---------------------------------------------------------------------------------

    def encode(self, text: str) -> bytes:
        if self.codepage == 65001:
            return text.encode("utf-8", errors="replace")
        try:
            return text.encode(f"cp{self.codepage}", errors="replace")
        except LookupError:
            return text.encode("cp437", errors="replace")

    def check(self) -> None:
        if self.proc.cancelled.is_set():
            raise Terminated()

    # -- entry points -----------------------------------------------------------------------------

    def run_line(self, line: str, io: Io) -> int:
        """Run a command line (cmd /c): percent expansion in command-line mode."""
        text = self.expand(line, batch=False)
        try:
            node = Parser(text).parse()
        except NeedMore:
            self.write(io.err, "The syntax of the command is incorrect.\r\n")
            return 255
        except SyntaxError as exc:
            self.write(io.err, f"{exc.msg}\r\n")
            return 255
        self.execute(node, io, {})
        return self.errorlevel

    def run_batch(self, path: str, args: list[str], io: Io) -> int:
        data = self.machine.read_file(path)
        if data is None:
            self.write(io.err, "The system cannot find the path specified.\r\n")
            self.errorlevel = 1
            return 1
        text = data.decode("utf-8" if self.codepage == 65001 else "cp437", errors="replace")
        lines = text.replace("\r\n", "\n").split("\n")
        outer = self.frame
        frame = BatchFrame(self.machine.full_path(path), args, lines)
        self.frame = frame
        try:
            while frame.pc < len(frame.lines):
                self.check()
                line = frame.lines[frame.pc]
                frame.pc += 1
                stripped = line.lstrip(" \t@")
                if stripped.startswith(":"):
                    continue  # a label (or a :: comment)
                text = self.expand(line, batch=True)
                while True:
                    try:
                        node = Parser(text).parse()
                        break
                    except NeedMore:
                        if frame.pc >= len(frame.lines):
                            node = None
                            break
                        text += "\n" + self.expand(frame.lines[frame.pc], batch=True)
                        frame.pc += 1
                    except SyntaxError as exc:
                        self.write(io.err, f"{exc.msg}\r\n")
                        return self.errorlevel
                if node is None:
                    break
                try:
                    self.execute(node, io, {})
                except _ExitBatch:
                    break
                except _Goto as goto:
                    if goto.label == ":eof":
                        break
                    target = self._find_label(frame, goto.label)
                    if target is None:
                        self.write(
                            io.err,
                            f"The system cannot find the batch label specified - {goto.label}\r\n",
                        )
                        self.errorlevel = 1
                        break
                    frame.pc = target
            return self.errorlevel
        finally:
            if frame.locals:
                self.env = frame.locals[0]
            self.frame = outer

    def _find_label(self, frame: BatchFrame, label: str) -> int | None:
        wanted = label.lstrip(":").lower()
        order = list(range(frame.pc, len(frame.lines))) + list(range(0, frame.pc))
        for n in order:
            line = frame.lines[n].lstrip(" \t")
            if line.startswith(":"):
                name = re.split(r"[\s+:]", line[1:] + " ", maxsplit=1)[0].lower()
                if name == wanted:
                    return n + 1
        return None

    # -- percent expansion ------------------------------------------------------------------------

    def expand(self, line: str, *, batch: bool) -> str:
        out: list[str] = []
        i = 0
        n = len(line)
        while i < n:
            ch = line[i]
            if ch != "%":
                out.append(ch)
                i += 1
                continue
            if batch and i + 1 < n and line[i + 1] == "%":
                out.append("%")
                i += 2
                continue
            if batch and self.frame is not None:
                m = re.match(r"%(~[fdpnxs]*)?([0-9*])", line[i:])
                if m:
                    out.append(self._arg(m.group(2), m.group(1) or ""))
                    i += m.end()
                    continue
            end = line.find("%", i + 1)
            if end < 0:
                if not batch:
                    out.append(line[i:])
                i = n
                continue
            name = line[i + 1 : end]
            value = self._variable(name)
            if value is None:
                if batch:
                    i = end + 1  # undefined: nothing (and the closing % is used up)
                    continue
                out.append("%")
                i += 1
                continue
            out.append(value)
            i = end + 1
        return "".join(out)

    def _variable(self, name: str) -> str | None:
        if not name or "\n" in name:
            return None
        value = self.env.get(name)
        if value is not None:
            return value
        upper = name.upper()
        if upper == "ERRORLEVEL":
            return str(self.errorlevel)
        if upper == "CD":
            return self.env.get("__CD__") or "C:\\Windows\\system32"
        if upper == "RANDOM":
            return "4242"
        return None

    def _arg(self, which: str, mods: str) -> str:
        frame = self.frame
        assert frame is not None
        if which == "*":
            return " ".join(frame.args)
        index = int(which)
        if index == 0:
            value = f'"{frame.path}"' if not mods else frame.path
        else:
            value = frame.args[index - 1] if index - 1 < len(frame.args) else ""
        if not mods:
            return value
        value = value.strip('"')
        flags = mods[1:]
        if not flags:
            return value
        full = self.machine.full_path(value) if index else frame.path
        directory, _, base = full.rpartition("\\")
        stem, dot, ext = base.rpartition(".")
        if not dot:
            stem, ext = base, ""
        parts = {
            "d": full[:2],
            "p": directory[2:] + "\\",
            "n": stem,
            "x": f".{ext}" if ext else "",
        }
        if "f" in flags:
            return full
        return "".join(parts[f] for f in "dpnx" if f in flags)

    # -- execution --------------------------------------------------------------------------------

    def write(self, sink: Sink, text: str) -> None:
        sink.write(self.encode(text))

    def execute(self, node: Node, io: Io, forvars: dict[str, str]) -> None:
        self.check()
        if isinstance(node, Seq):
            for op, item in node.items:
                if op == "&&" and self.errorlevel != 0:
                    continue
                if op == "||" and self.errorlevel == 0:
                    continue
                self.execute(item, io, forvars)
        elif isinstance(node, Pipe):
            data: bytes | None = io.stdin
            for n, part in enumerate(node.parts):
                last = n == len(node.parts) - 1
                sink: Sink = io.out if last else BufferSink()
                self.execute(part, Io(sink, io.err, data if n else io.stdin), forvars)
                if not last:
                    assert isinstance(sink, BufferSink)
                    data = bytes(sink.data)
        elif isinstance(node, Block):
            with self._redirected(node.redirs, io, forvars) as rio:
                if rio is not None:
                    self.execute(node.body, rio, forvars)
        elif isinstance(node, If):
            self._if(node, io, forvars)
        elif isinstance(node, For):
            self._for(node, io, forvars)
        else:
            with self._redirected(node.redirs, io, forvars) as rio:
                if rio is not None:
                    self._simple(_subst(node.text, forvars), rio)

    class _Redirect:
        def __init__(self, cmd: Cmd, redirs: list[Redir], io: Io, forvars: dict[str, str]):
            self.cmd, self.redirs, self.io, self.forvars = cmd, redirs, io, forvars
            self.opened: list[Sink] = []

        def __enter__(self) -> Io | None:
            io = Io(self.io.out, self.io.err, self.io.stdin)
            for r in self.redirs:
                if r.target.startswith("&"):
                    src = {"1": io.out, "2": io.err}.get(r.target[1:], io.out)
                    if r.fd == 2:
                        io.err = src
                    else:
                        io.out = src
                    continue
                name = _subst(r.target, self.forvars).strip('"')
                if r.fd == 0:
                    data = self.cmd.machine.read_file(name)
                    if data is None:
                        self.cmd.write(io.err, "The system cannot find the file specified.\r\n")
                        self.cmd.errorlevel = 1
                        return None
                    io.stdin = data
                    continue
                sink: Sink
                if name.lower() == "nul":
                    sink = NulSink()
                elif not self.cmd.machine.can_write(name):
                    self.cmd.write(io.err, "The system cannot find the path specified.\r\n")
                    self.cmd.errorlevel = 1
                    return None
                else:
                    sink = FileSink(self.cmd.machine, name, r.append)
                    self.opened.append(sink)
                if r.fd == 2:
                    io.err = sink
                else:
                    io.out = sink
            return io

        def __exit__(self, *exc: object) -> None:
            for sink in self.opened:
                sink.close()

    def _redirected(self, redirs: list[Redir], io: Io, forvars: dict[str, str]) -> Cmd._Redirect:
        return Cmd._Redirect(self, redirs, io, forvars)

    def _if(self, node: If, io: Io, forvars: dict[str, str]) -> None:
        left = _subst(node.left, forvars)
        right = _subst(node.right, forvars)
        if node.kind == "exist":
            result = self.machine.exists(left.strip('"'))
        elif node.kind == "defined":
            result = self.env.get(left) is not None
        elif node.kind == "errorlevel":
            result = self.errorlevel >= _int(left, 0)
        elif node.kind == "==":
            result = left.lower() == right.lower() if node.ignore_case else left == right
        else:
            a, b = _number(left), _number(right)
            if a is None or b is None:
                x, y = (left.lower(), right.lower()) if node.ignore_case else (left, right)
                cmp = (x > y) - (x < y)
            else:
                cmp = (a > b) - (a < b)
            result = {
                "EQU": cmp == 0,
                "NEQ": cmp != 0,
                "LSS": cmp < 0,
                "LEQ": cmp <= 0,
                "GTR": cmp > 0,
                "GEQ": cmp >= 0,
            }[node.kind]
        if node.negate:
            result = not result
        if result:
            self.execute(node.then, io, forvars)
        elif node.otherwise is not None:
            self.execute(node.otherwise, io, forvars)

    def _for(self, node: For, io: Io, forvars: dict[str, str]) -> None:
        opts = _for_options(node.options)
        source = _subst(node.source, forvars)
        usebackq = opts["usebackq"]
        data: str
        if (usebackq and source.startswith("`")) or (not usebackq and source.startswith("'")):
            child = Cmd(self.machine, self.proc, self.env.copy(), self.codepage, self.run_program)
            buffer = BufferSink()
            child.run_line(source[1:-1], Io(buffer, io.err, b""))
            data = buffer.data.decode("utf-8" if self.codepage == 65001 else "cp437", "replace")
        elif (usebackq and source.startswith("'")) or (not usebackq and source.startswith('"')):
            data = source[1:-1]
        else:
            raw = self.machine.read_file(source.strip('"'))
            if raw is None:
                self.write(io.err, f"The system cannot find the file {source.strip(chr(34))}.\r\n")
                self.errorlevel = 1
                return
            data = raw.decode("utf-8", errors="replace")
        lines = [ln.rstrip("\r") for ln in data.split("\n")]
        skip = int(opts["skip"])
        for line in lines:
            if skip:
                skip -= 1
                continue
            if not line or (opts["eol"] and line.startswith(opts["eol"])):
                continue
            values = _tokens(line, opts)
            if values is None:
                continue
            names = [chr(ord(node.var) + k) for k in range(len(values))]
            scope = dict(forvars)
            scope.update(zip(names, values, strict=True))
            self.execute(node.body, io, scope)

    # -- simple commands --------------------------------------------------------------------------

    def _simple(self, text: str, io: Io) -> None:
        text = text.strip(" \t")
        if not text:
            return
        name, rest = _split_command(text)
        lower = name.lower()
        if lower.startswith("echo") and (len(name) == 4 or name[4] in "(.:;/\\[]+="):
            self._echo(text[4:], io)
            return
        builtin = getattr(self, f"_b_{lower}", None) if lower.isalpha() else None
        if builtin is not None and not name.startswith('"'):
            builtin(rest, io)
            return
        program = name.strip('"')
        self.errorlevel = self.invoke(program, rest, io)

    def invoke(self, program: str, args: str, io: Io) -> int:
        """An external program or a batch file."""
        found = self.machine.resolve_file(program, ("", ".cmd", ".bat"))
        if found is not None and found.lower().endswith((".cmd", ".bat")):
            child_args = _split_args(args)
            if self.frame is None:
                return self.run_batch(found, child_args, io)
            # From a batch file without CALL: control passes to the other one for good.
            code = self.run_batch(found, child_args, io)
            self.errorlevel = code
            raise _ExitBatch()
        return self.run_program(self, program, args, io)

    def _echo(self, rest: str, io: Io) -> None:
        if rest[:1] in ("", " ", "\t"):
            arg = rest[1:] if rest else ""
            if not arg.strip():
                self.write(io.out, f"ECHO is {'on' if self.echo else 'off'}.\r\n")
                return
            if arg.strip().lower() in ("on", "off"):
                self.echo = arg.strip().lower() == "on"
                return
            self.write(io.out, arg + "\r\n")
            return
        self.write(io.out, rest[1:] + "\r\n")

    def _b_rem(self, rest: str, io: Io) -> None:
        pass

    def _b_setlocal(self, rest: str, io: Io) -> None:
        if self.frame is not None:
            self.frame.locals.append(self.env)
            self.env = self.env.copy()
        self.errorlevel = 0

    def _b_endlocal(self, rest: str, io: Io) -> None:
        if self.frame is not None and self.frame.locals:
            self.env = self.frame.locals.pop()

    def _b_set(self, rest: str, io: Io) -> None:
        rest = rest.strip(" \t")
        if rest.lower().startswith("/a"):
            expr = rest[2:].strip().strip('"')
            try:
                value = _arith(expr, self.env)
            except (ValueError, ZeroDivisionError):
                self.write(io.err, "Missing operand.\r\n")
                self.errorlevel = 1073750988
                return
            if self.frame is None:
                self.write(io.out, str(value))
            return
        if not rest or "=" not in rest:
            prefix = rest.strip('"').upper()
            shown = [f"{k}={v}\r\n" for k, v in self.env.items() if k.upper().startswith(prefix)]
            if not shown:
                self.write(io.err, f"Environment variable {rest} not defined\r\n")
                self.errorlevel = 1
                return
            self.write(io.out, "".join(shown))
            return
        if rest.startswith('"'):
            end = rest.rfind('"')
            rest = rest[1:end] if end > 0 else rest[1:]
        name, _, value = rest.partition("=")
        if not name:
            self.write(io.err, "The syntax of the command is incorrect.\r\n")
            self.errorlevel = 1
            return
        self.env.set(name, value)

    def _b_goto(self, rest: str, io: Io) -> None:
        label = rest.strip().split()[0] if rest.strip() else ""
        if label.lower() == ":eof":
            raise _Goto(":eof")
        if self.frame is None:
            return
        raise _Goto(label)

    def _b_exit(self, rest: str, io: Io) -> None:
        words = rest.split()
        if words and words[0].lower() == "/b":
            if len(words) > 1:
                self.errorlevel = _int(words[1], 0)
            if self.frame is not None:
                raise _ExitBatch()
            raise ExitCmd(self.errorlevel)
        raise ExitCmd(_int(words[0], 0) if words else self.errorlevel)

    def _b_call(self, rest: str, io: Io) -> None:
        # CALL expands percents once more, by the rules of where it runs (so on a command
        # line "call echo %^ERRORLEVEL%" prints the errorlevel of when it runs).
        rest = self.expand(rest, batch=self.frame is not None)
        name, args = _split_command(rest.strip())
        program = name.strip('"')
        found = self.machine.resolve_file(program, ("", ".cmd", ".bat"))
        if found is not None and found.lower().endswith((".cmd", ".bat")):
            self.errorlevel = self.run_batch(found, _split_args(args), io)
            return
        self._simple(rest, io)

    def _b_type(self, rest: str, io: Io) -> None:
        for name in _split_args(rest):
            data = self.machine.read_file(name)
            if data is None:
                self.write(io.err, "The system cannot find the file specified.\r\n")
                self.errorlevel = 1
                continue
            if data.startswith(b"\xff\xfe"):
                io.out.write(self.encode(data[2:].decode("utf-16-le", errors="replace")))
            else:
                io.out.write(data)

    def _b_del(self, rest: str, io: Io) -> None:
        for name in _split_args(rest):
            if name.startswith("/"):
                continue
            if not self.machine.delete_file(name):
                self.write(io.err, f"Could Not Find {self.machine.full_path(name)}\r\n")

    _b_erase = _b_del

    def _b_cd(self, rest: str, io: Io) -> None:
        if not rest.strip():
            self.write(io.out, (self.env.get("__CD__") or "C:\\Windows\\system32") + "\r\n")

    _b_chdir = _b_cd

    def _b_ver(self, rest: str, io: Io) -> None:
        self.write(io.out, "\r\nMicrosoft Windows [Version 10.0.19045.3803]\r\n")


class _ExitBatch(Exception):
    pass


class _Goto(Exception):
    def __init__(self, label: str) -> None:
        self.label = label


# -- helpers ------------------------------------------------------------------------------------


def _subst(text: str, forvars: dict[str, str]) -> str:
    if not forvars or "%" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        mods, var = m.group(1), m.group(2)
        if var not in forvars:
            return m.group(0)
        value = forvars[var]
        return value.strip('"') if mods else value

    return re.sub(r"%(~)?([A-Za-z])", one, text)


def _split_command(text: str) -> tuple[str, str]:
    """The command name (quoted or not) and the rest of the line, as cmd splits them."""
    if text.startswith('"'):
        end = text.find('"', 1)
        if end < 0:
            return text, ""
        return text[: end + 1], text[end + 1 :]
    m = re.match(r"[^\s/]+|/[^\s]*", text)
    assert m is not None
    name = m.group(0)
    return name, text[len(name) :]


def split_args(text: str) -> list[str]:
    """Program arguments as the Microsoft C runtime splits a command line."""
    args: list[str] = []
    current: list[str] = []
    in_arg = False
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            j = i
            while j < len(text) and text[j] == "\\":
                j += 1
            count = j - i
            if j < len(text) and text[j] == '"':
                current.append("\\" * (count // 2))
                if count % 2:
                    current.append('"')
                    i = j + 1
                else:
                    i = j
                in_arg = True
                continue
            current.append("\\" * count)
            i = j
            in_arg = True
            continue
        if ch == '"':
            if quoted and i + 1 < len(text) and text[i + 1] == '"':
                current.append('"')
                i += 2
                continue
            quoted = not quoted
            in_arg = True
            i += 1
            continue
        if ch in " \t" and not quoted:
            if in_arg:
                args.append("".join(current))
                current, in_arg = [], False
            i += 1
            continue
        current.append(ch)
        in_arg = True
        i += 1
    if in_arg:
        args.append("".join(current))
    return args


_split_args = split_args


def _int(text: str, default: int) -> int:
    value = _number(text)
    return default if value is None else value


def _number(text: str) -> int | None:
    t = text.strip()
    try:
        if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", t):
            return int(t, 16)
        if re.fullmatch(r"[+-]?0[0-7]+", t):
            return int(t, 8)
        if re.fullmatch(r"[+-]?\d+", t):
            return int(t)
    except ValueError:
        return None
    return None


def _for_options(text: str) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "usebackq": False,
        "tokens": [1],
        "star": False,
        "delims": " \t",
        "skip": 0,
        "eol": ";",
    }
    i = 0
    while i < len(text):
        while i < len(text) and text[i] == " ":
            i += 1
        if text.startswith("usebackq", i):
            opts["usebackq"] = True
            i += len("usebackq")
        elif text.startswith("delims=", i):
            i += len("delims=")
            end = i
            # delims= runs to the end, or to the next space that starts another option.
            m = re.search(r" (?=(tokens|skip|eol|usebackq)\b)", text[i:])
            end = i + m.start() if m else len(text)
            opts["delims"] = text[i:end]
            i = end
        elif text.startswith("tokens=", i):
            i += len("tokens=")
            m = re.match(r"[0-9,*-]+", text[i:])
            spec = m.group(0) if m else "1"
            i += len(spec)
            tokens: list[int] = []
            for part in spec.split(","):
                if part == "*":
                    opts["star"] = True
                elif part.endswith("*"):
                    tokens.append(int(part[:-1]))
                    opts["star"] = True
                elif "-" in part:
                    a, b = part.split("-")
                    tokens.extend(range(int(a), int(b) + 1))
                elif part:
                    tokens.append(int(part))
            opts["tokens"] = tokens
        elif text.startswith("skip=", i):
            m = re.match(r"\d+", text[i + 5 :])
            opts["skip"] = int(m.group(0)) if m else 0
            i += 5 + (len(m.group(0)) if m else 0)
        elif text.startswith("eol=", i):
            opts["eol"] = text[i + 4 : i + 5]
            i += 5
        else:
            i += 1
    return opts


def _tokens(line: str, opts: dict[str, Any]) -> list[str] | None:
    """The FOR /F tokens of a line: the numbered ones, then the rest of the line for '*'."""
    delims: str = opts["delims"]
    wanted: list[int] = opts["tokens"]
    star: bool = opts["star"]
    # Token boundaries: runs of non-delimiters.
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(line):
        while i < len(line) and line[i] in delims:
            i += 1
        if i >= len(line):
            break
        j = i
        while j < len(line) and line[j] not in delims:
            j += 1
        spans.append((i, j))
        i = j
    if not spans:
        return None
    values: list[str] = []
    for t in wanted:
        values.append(line[spans[t - 1][0] : spans[t - 1][1]] if t - 1 < len(spans) else "")
    if star:
        last = max(wanted) if wanted else 0
        values.append(line[spans[last][0] :] if last < len(spans) else "")
    return values


def _arith(expr: str, env: Env) -> int:
    """SET /A: one assignment (or an expression) with + - * / % and parentheses."""
    m = re.fullmatch(r"\s*([A-Za-z_][\w.]*)\s*=(.*)", expr, re.S)
    target = None
    if m:
        target, expr = m.group(1), m.group(2)
    tokens = re.findall(r"0[xX][0-9a-fA-F]+|\d+|[A-Za-z_][\w.]*|[-+*/%()]", expr)
    pos = 0

    def atom() -> int:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            value = add()
            pos += 1
            return value
        if tok == "-":
            return -atom()
        if tok == "+":
            return atom()
        if tok[0].isdigit():
            number = _number(tok)
            if number is None:
                raise ValueError(tok)
            return number
        return _number(env.get(tok) or "0") or 0

    def mul() -> int:
        nonlocal pos
        value = atom()
        while pos < len(tokens) and tokens[pos] in "*/%":
            op = tokens[pos]
            pos += 1
            right = atom()
            if op == "*":
                value *= right
            elif op == "/":
                value = int(value / right)
            else:
                value = int(value - right * int(value / right))
        return value

    def add() -> int:
        nonlocal pos
        value = mul()
        while pos < len(tokens) and tokens[pos] in "+-":
            op = tokens[pos]
            pos += 1
            right = mul()
            value = value + right if op == "+" else value - right
        return value

    if not tokens:
        raise ValueError("empty")
    result = add()
    if target is not None:
        env.set(target, str(result))
    return result
