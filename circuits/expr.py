"""Polynomial constraint expressions over named columns, and their compilation.

A gate is an expression in
  - columns at a rotation: ``Col("key")`` is key(X), ``Col("key", 1)`` is key(omega * X);
  - named scalars: challenges (beta, gamma, delta) and public values (A / N);
  - integer constants.
Every gate must vanish on the whole domain H.

One description serves both sides (as in halo2's ``Expression``): the prover evaluates the
gates at every point of a coset of the extended domain, the verifier at the single point
zeta. Both call the same function, generated once from the expressions by
:func:`compile_gates`, so the two sides cannot drift apart. Two more back ends read the same
tree: :func:`compile_vector_program` (a straight-line register program that the native core
runs over whole coset columns, ``native/src/rounds.rs``) and the Yul of
``contracts/codegen.py``; tests check each against this one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property
from typing import Union

from circuits.constants import R

Operand = Union["Expr", int]


class Expr:
    """Base class of constraint expressions; supports +, -, * with expressions and ints."""

    def __add__(self, other: Operand) -> Expr:
        return Sum(self, _lift(other))

    def __radd__(self, other: Operand) -> Expr:
        return Sum(_lift(other), self)

    def __sub__(self, other: Operand) -> Expr:
        return Sum(self, Neg(_lift(other)))

    def __rsub__(self, other: Operand) -> Expr:
        return Sum(_lift(other), Neg(self))

    def __mul__(self, other: Operand) -> Expr:
        return Product(self, _lift(other))

    def __rmul__(self, other: Operand) -> Expr:
        return Product(_lift(other), self)

    def __neg__(self) -> Expr:
        return Neg(self)

    def degree(self, column_degrees: Mapping[str, int]) -> int:
        """A bound on the polynomial degree, given the degree of each column polynomial."""
        raise NotImplementedError

    def source(self) -> str:
        """Python source that evaluates this expression (without the final reduction mod R)."""
        raise NotImplementedError

    def variables(self) -> set[str]:
        """Names of the variables (columns at rotations, scalars) the source refers to."""
        raise NotImplementedError


def _lift(value: Operand) -> Expr:
    return value if isinstance(value, Expr) else Const(value % R)


@dataclass(frozen=True, eq=False)
class Const(Expr):
    value: int

    def degree(self, column_degrees: Mapping[str, int]) -> int:
        return 0

    def source(self) -> str:
        return str(self.value)

    def variables(self) -> set[str]:
        return set()


@dataclass(frozen=True, eq=False)
class Col(Expr):
    """A column polynomial at rotation ``rot``: c(omega^rot * X)."""

    name: str
    rot: int = 0

    @property
    def variable(self) -> str:
        return self.name if self.rot == 0 else f"{self.name}_next"

    def degree(self, column_degrees: Mapping[str, int]) -> int:
        return column_degrees[self.name]

    def source(self) -> str:
        return self.variable

    def variables(self) -> set[str]:
        return {self.variable}


@dataclass(frozen=True, eq=False)
class Scalar(Expr):
    """A named scalar fixed for the whole domain: a challenge or a public value."""

    name: str

    def degree(self, column_degrees: Mapping[str, int]) -> int:
        return 0

    def source(self) -> str:
        return self.name

    def variables(self) -> set[str]:
        return {self.name}


@dataclass(frozen=True, eq=False)
class Sum(Expr):
    left: Expr
    right: Expr

    def degree(self, column_degrees: Mapping[str, int]) -> int:
        return max(self.left.degree(column_degrees), self.right.degree(column_degrees))

    def source(self) -> str:
        return f"({self.left.source()} + {self.right.source()})"

    def variables(self) -> set[str]:
        return self.left.variables() | self.right.variables()


@dataclass(frozen=True, eq=False)
class Neg(Expr):
    inner: Expr

    def degree(self, column_degrees: Mapping[str, int]) -> int:
        return self.inner.degree(column_degrees)

    def source(self) -> str:
        return f"(-{self.inner.source()})"

    def variables(self) -> set[str]:
        return self.inner.variables()


@dataclass(frozen=True, eq=False)
class Product(Expr):
    left: Expr
    right: Expr

    def degree(self, column_degrees: Mapping[str, int]) -> int:
        return self.left.degree(column_degrees) + self.right.degree(column_degrees)

    def source(self) -> str:
        # Reduce products as they are formed so intermediate integers stay ~2 words wide.
        return f"({self.left.source()} * {self.right.source()} % {R})"

    def variables(self) -> set[str]:
        return self.left.variables() | self.right.variables()


@dataclass(frozen=True)
class Gate:
    """A named constraint that must vanish at every point of H."""

    name: str
    expr: Expr
    note: str = ""


@dataclass(frozen=True)
class CompiledGates:
    """The gates folded with powers of alpha into one function of the variables.

    ``evaluate(**values)`` returns sum_i alpha^i * gate_i mod R, where ``values`` maps each
    name in :attr:`parameters` (columns, ``<col>_next`` for rotation 1, scalars, ``alpha``)
    to a field element.
    """

    parameters: tuple[str, ...]
    source: str

    @cached_property
    def function(self) -> Callable[..., int]:
        namespace: dict[str, object] = {"R": R}
        exec(compile(self.source, "<zkmeter gates>", "exec"), namespace)
        fn = namespace["combined_gates"]
        if not callable(fn):
            raise TypeError("generated gate source did not define combined_gates")
        return fn

    def evaluate(self, values: dict[str, int]) -> int:
        missing = [p for p in self.parameters if p not in values]
        if missing:
            raise KeyError(f"gate evaluation is missing values for {missing}")
        return int(self.function(*(values[p] for p in self.parameters))) % R


def compile_gates(gates: Sequence[Gate]) -> CompiledGates:
    """Generate ``combined_gates(*params, alpha) = sum_i alpha^i gate_i (mod R)`` as Python.

    Each distinct product is computed once into a temporary (common subexpressions such as
    the transition selector are shared between gates), then the gates are folded by Horner
    in alpha from the last one: acc = g_{m-1}; acc = acc * alpha + g_{m-2}; ...; so gate i
    carries alpha^i.
    """
    names: set[str] = set()
    for gate in gates:
        names |= gate.expr.variables()
    parameters = (*sorted(names), "alpha")
    temporaries: dict[str, str] = {}
    body: list[str] = []

    def emit(expr: Expr) -> str:
        """Source for ``expr`` in which every product is a named temporary."""
        if isinstance(expr, Sum):
            return f"({emit(expr.left)} + {emit(expr.right)})"
        if isinstance(expr, Neg):
            return f"(-{emit(expr.inner)})"
        if isinstance(expr, Product):
            text = f"{emit(expr.left)} * {emit(expr.right)} % R"
            if text not in temporaries:
                temporaries[text] = f"t{len(temporaries)}"
                body.append(f"    {temporaries[text]} = {text}")
            return temporaries[text]
        return expr.source()

    gate_sources = [emit(gate.expr) for gate in gates]
    lines = [f"def combined_gates({', '.join(parameters)}):", *body]
    lines.append(f"    acc = {gate_sources[-1]} % R  # {gates[-1].name}")
    for gate, text in zip(reversed(gates[:-1]), reversed(gate_sources[:-1]), strict=True):
        lines.append(f"    acc = (acc * alpha + {text}) % R  # {gate.name}")
    lines.append("    return acc")
    return CompiledGates(parameters=parameters, source="\n".join(lines) + "\n")


class Opcode(IntEnum):
    """Instructions of a :class:`VectorProgram` (``native/src/rounds.rs`` decodes the same
    numbers): ``dst = a + b``, ``a - b``, ``a * b``, ``-a`` in Fr."""

    ADD = 0
    SUB = 1
    MUL = 2
    NEG = 3


@dataclass(frozen=True)
class VectorProgram:
    """The folded gates as a straight-line program over registers, for vector evaluation.

    Registers ``0 .. len(inputs) - 1`` hold the inputs: the names of
    :attr:`CompiledGates.parameters` (columns, ``<col>_next``, scalars, ``alpha``) followed
    by the integer constants of the expressions (``constants``, as field elements). Each
    instruction ``(op, dst, a, b)`` writes a new register ``dst >= len(inputs)`` from
    registers ``a`` and ``b`` (``b`` unused by NEG); the result is register ``output``.
    Equal sub-expressions (same operation on the same registers) get one register, so
    shared factors such as the transition selector are computed once per point, as in
    :func:`compile_gates`. The folding by alpha is Horner's rule from the last gate, so gate
    ``i`` carries ``alpha^i`` exactly as there.
    """

    parameters: tuple[str, ...]
    constants: tuple[int, ...]
    code: tuple[tuple[int, int, int, int], ...]
    output: int
    registers: int

    @property
    def inputs(self) -> int:
        """Registers loaded before the code runs: the parameters, then the constants."""
        return len(self.parameters) + len(self.constants)

    def evaluate(self, values: Mapping[str, int]) -> int:
        """Run the program on one point (pure Python: the reference for the native
        interpreter); ``values`` maps every parameter to a field element."""
        missing = [p for p in self.parameters if p not in values]
        if missing:
            raise KeyError(f"gate evaluation is missing values for {missing}")
        regs = [0] * self.registers
        for r, name in enumerate(self.parameters):
            regs[r] = values[name] % R
        for r, value in enumerate(self.constants, start=len(self.parameters)):
            regs[r] = value
        for op, dst, a, b in self.code:
            if op == Opcode.ADD:
                regs[dst] = (regs[a] + regs[b]) % R
            elif op == Opcode.SUB:
                regs[dst] = (regs[a] - regs[b]) % R
            elif op == Opcode.MUL:
                regs[dst] = regs[a] * regs[b] % R
            elif op == Opcode.NEG:
                regs[dst] = -regs[a] % R
            else:
                raise ValueError(f"unknown opcode {op}")
        return regs[self.output]


def compile_vector_program(gates: Sequence[Gate]) -> VectorProgram:
    """Compile ``sum_i alpha^i gate_i`` into a :class:`VectorProgram` (the third back end
    of the expression tree, beside :func:`compile_gates` and the Yul of
    ``contracts/codegen.py``). ``a - b`` (a ``Sum`` with a ``Neg`` right operand) becomes
    one SUB."""
    names: set[str] = set()
    for gate in gates:
        names |= gate.expr.variables()
    parameters = (*sorted(names), "alpha")
    constants: dict[int, int] = {}
    code: list[tuple[int, int, int, int]] = []
    memo: dict[tuple[int, int, int], int] = {}
    constant_values: list[int] = []

    def collect_constants(expr: Expr) -> None:
        if isinstance(expr, Const):
            if expr.value % R not in constants:
                constants[expr.value % R] = len(constant_values)
                constant_values.append(expr.value % R)
        elif isinstance(expr, Sum | Product):
            collect_constants(expr.left)
            collect_constants(expr.right)
        elif isinstance(expr, Neg):
            collect_constants(expr.inner)

    for gate in gates:
        collect_constants(gate.expr)
    first_temp = len(parameters) + len(constant_values)
    registers = [first_temp]

    def instruction(op: Opcode, a: int, b: int) -> int:
        if op in (Opcode.ADD, Opcode.MUL) and a > b:
            a, b = b, a  # commutative: one register for a*b and b*a
        key = (int(op), a, b)
        if key not in memo:
            memo[key] = registers[0]
            code.append((int(op), registers[0], a, b))
            registers[0] += 1
        return memo[key]

    def emit(expr: Expr) -> int:
        if isinstance(expr, Const):
            return len(parameters) + constants[expr.value % R]
        if isinstance(expr, Col):
            return parameters.index(expr.variable)
        if isinstance(expr, Scalar):
            return parameters.index(expr.name)
        if isinstance(expr, Sum):
            if isinstance(expr.right, Neg):
                return instruction(Opcode.SUB, emit(expr.left), emit(expr.right.inner))
            return instruction(Opcode.ADD, emit(expr.left), emit(expr.right))
        if isinstance(expr, Neg):
            inner = emit(expr.inner)
            return instruction(Opcode.NEG, inner, inner)
        if isinstance(expr, Product):
            return instruction(Opcode.MUL, emit(expr.left), emit(expr.right))
        raise TypeError(f"cannot compile {type(expr).__name__}")

    alpha = parameters.index("alpha")
    acc = emit(gates[-1].expr)
    for gate in reversed(gates[:-1]):
        acc = instruction(Opcode.ADD, instruction(Opcode.MUL, acc, alpha), emit(gate.expr))
    return VectorProgram(
        parameters=parameters,
        constants=tuple(constant_values),
        code=tuple(code),
        output=acc,
        registers=registers[0],
    )
