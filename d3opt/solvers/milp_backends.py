"""Solver backends for the MILP: OR-Tools MathOpt (HiGHS, SCIP) and PuLP (bundled CBC).

A backend loads a :class:`~d3opt.solvers.milp_model.MilpFormulation` with its
:class:`~d3opt.solvers.milp_model.Coefficients`, applies re-costed coefficients, and solves
with a time limit, a gap and an optional full hint vector, answering a :class:`RawResult`.
The MathOpt backends update the loaded model in place; the CBC backend rebuilds its PuLP
problem on update (CBC reads a fresh file on every solve anyway).

Examples
--------
>>> sorted(BACKENDS)
['cbc', 'highs', 'scip']
"""

from __future__ import annotations

import math
import re
import tempfile
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from d3opt.errors import SolverError
from d3opt.solvers.milp_model import Coefficients, MilpFormulation

#: Backend name -> short description (the ``solver=`` option of the MILP).
BACKENDS = {
    "highs": "HiGHS through OR-Tools MathOpt (default)",
    "scip": "SCIP through OR-Tools MathOpt",
    "cbc": "CBC bundled with PuLP",
}


@dataclass(frozen=True)
class RawResult:
    """What a backend found.

    ``outcome`` is ``"optimal"`` (proven within the gap asked for), ``"feasible"`` (stopped
    early by a limit other than time), ``"time_limit"`` (stopped by the time limit with a
    solution), ``"no_solution"`` (stopped by the time limit without one) or ``"infeasible"``.
    """

    outcome: str
    values: np.ndarray | None = None
    objective: float | None = None
    bound: float | None = None
    message: str = ""


def make_backend(solver: str):
    """A fresh backend for ``solver`` (``"highs"``, ``"scip"`` or ``"cbc"``)."""
    if solver == "cbc":
        return PulpCbcBackend()
    if solver in ("highs", "scip"):
        return MathOptBackend(solver)
    raise ValueError(f"unknown MILP solver {solver!r}; choose one of {sorted(BACKENDS)}")


def model_proto(form: MilpFormulation, coefficients: Coefficients):
    """The MILP as an OR-Tools MathOpt ``ModelProto`` (variable ``i`` has id ``i``)."""
    from ortools.math_opt import model_pb2

    proto = model_pb2.ModelProto(name="d3opt_three_tier_tiles")
    proto.variables.ids.extend(range(form.num_variables))
    proto.variables.lower_bounds.extend(form.lower)
    proto.variables.upper_bounds.extend(coefficients.upper.tolist())
    proto.variables.integers.extend(form.integer)
    proto.variables.names.extend(form.names)
    nonzero = [i for i, value in enumerate(coefficients.objective) if value]
    proto.objective.linear_coefficients.ids.extend(nonzero)
    proto.objective.linear_coefficients.values.extend(
        float(coefficients.objective[i]) for i in nonzero)
    proto.linear_constraints.ids.extend(range(form.num_constraints))
    proto.linear_constraints.lower_bounds.extend(form.row_lower)
    proto.linear_constraints.upper_bounds.extend(coefficients.row_upper.tolist())
    proto.linear_constraints.names.extend(form.row_names)
    matrix = sorted({**form.entries, **coefficients.entries}.items())
    proto.linear_constraint_matrix.row_ids.extend(r for (r, _), _ in matrix)
    proto.linear_constraint_matrix.column_ids.extend(c for (_, c), _ in matrix)
    proto.linear_constraint_matrix.coefficients.extend(v for _, v in matrix)
    return proto


def pulp_problem(form: MilpFormulation, coefficients: Coefficients):
    """The MILP as a PuLP problem; returns ``(problem, variables)``."""
    import pulp

    problem = pulp.LpProblem("d3opt_three_tier_tiles", pulp.LpMinimize)
    variables = [
        problem.add_variable(name, lowBound=low, upBound=float(up),
                             cat=pulp.LpInteger if integer else pulp.LpContinuous)
        for name, low, up, integer in zip(form.names, form.lower, coefficients.upper,
                                          form.integer)
    ]
    problem += pulp.LpAffineExpression(
        [(variables[i], float(v)) for i, v in enumerate(coefficients.objective) if v])
    rows: list[list] = [[] for _ in range(form.num_constraints)]
    for (r, c), value in {**form.entries, **coefficients.entries}.items():
        rows[r].append((variables[c], value))
    for r, terms in enumerate(rows):
        low, up = form.row_lower[r], float(coefficients.row_upper[r])
        expr = pulp.LpAffineExpression(terms)
        if low == up:
            constraint = pulp.LpConstraint(expr, pulp.LpConstraintEQ, rhs=low)
        elif math.isinf(up):
            constraint = pulp.LpConstraint(expr, pulp.LpConstraintGE, rhs=low)
        else:
            constraint = pulp.LpConstraint(expr, pulp.LpConstraintLE, rhs=up)
        problem.addConstraint(constraint, name=form.row_names[r])
    return problem, variables


class MathOptBackend:
    """HiGHS or SCIP through OR-Tools MathOpt; coefficients are updated in place."""

    def __init__(self, solver: str):
        from ortools.math_opt.python import mathopt

        self.name = solver
        self._mathopt = mathopt
        self._type = {"highs": mathopt.SolverType.HIGHS, "scip": mathopt.SolverType.GSCIP}[solver]
        self._model = None

    def load(self, form: MilpFormulation, coefficients: Coefficients) -> None:
        """Build the solver model."""
        self._model = self._mathopt.Model.from_model_proto(model_proto(form, coefficients))
        self._vars = [self._model.get_variable(i) for i in range(form.num_variables)]
        self._rows = [self._model.get_linear_constraint(r) for r in range(form.num_constraints)]
        self._coefficients = coefficients

    def update(self, form: MilpFormulation, coefficients: Coefficients) -> None:
        """Apply the numbers that changed since the last load or update."""
        old = self._coefficients
        objective = self._model.objective
        for i in np.flatnonzero(old.objective != coefficients.objective):
            objective.set_linear_coefficient(self._vars[i], float(coefficients.objective[i]))
        for i in np.flatnonzero(old.upper != coefficients.upper):
            self._vars[i].upper_bound = float(coefficients.upper[i])
        for r in np.flatnonzero(old.row_upper != coefficients.row_upper):
            self._rows[r].upper_bound = float(coefficients.row_upper[r])
        for (r, c) in set(old.entries) | set(coefficients.entries):
            value = coefficients.entries.get((r, c), 0.0)
            if old.entries.get((r, c), 0.0) != value:
                self._rows[r].set_coefficient(self._vars[c], value)
        self._coefficients = coefficients

    def solve(self, *, time_limit: float | None, gap: float, hint: np.ndarray | None,
              presolve: bool | None = None) -> RawResult:
        """Solve; ``gap`` is the relative gap tolerance (absolute tolerance zero).

        ``presolve=None`` turns HiGHS's presolve off and leaves SCIP's on: on this model
        HiGHS's MIP presolve costs seconds for a few reductions (resnet50, K=4: 1.8 s with,
        0.37 s without).
        """
        mathopt = self._mathopt
        if presolve is None:
            presolve = self.name != "highs"
        params = mathopt.SolveParameters(
            time_limit=None if time_limit is None else timedelta(seconds=time_limit),
            relative_gap_tolerance=gap, absolute_gap_tolerance=0.0,
            presolve=None if presolve else mathopt.Emphasis.OFF)
        model_params = mathopt.ModelSolveParameters()
        if hint is not None:
            model_params = mathopt.ModelSolveParameters(solution_hints=[mathopt.SolutionHint(
                variable_values={v: float(x) for v, x in zip(self._vars, hint)})])
        try:
            result = mathopt.solve(self._model, self._type, params=params,
                                   model_params=model_params)
        except Exception as err:  # the backend's own failure, reported as ours
            raise SolverError(f"MILP backend {self.name!r} failed: {err}") from err
        reason = result.termination.reason
        reasons = mathopt.TerminationReason
        message = f"{reason.name.lower()} {result.termination.detail}".strip()
        if reason in (reasons.INFEASIBLE, reasons.INFEASIBLE_OR_UNBOUNDED):
            return RawResult("infeasible", message=message)
        bound = result.termination.objective_bounds.dual_bound
        bound = None if math.isinf(bound) else float(bound)
        timed = result.termination.limit == mathopt.Limit.TIME
        if reason == reasons.NO_SOLUTION_FOUND:
            return RawResult("no_solution" if timed else "infeasible", bound=bound,
                             message=message)
        if reason not in (reasons.OPTIMAL, reasons.FEASIBLE) or not result.has_primal_feasible_solution():
            raise SolverError(f"MILP backend {self.name!r} stopped: {message}")
        values = np.array(result.variable_values(self._vars), dtype=float)
        outcome = "optimal" if reason == reasons.OPTIMAL else ("time_limit" if timed else "feasible")
        return RawResult(outcome, values=values, objective=float(result.objective_value()),
                         bound=bound, message=message)


class PulpCbcBackend:
    """CBC through PuLP; an update rebuilds the PuLP problem."""

    name = "cbc"

    def load(self, form: MilpFormulation, coefficients: Coefficients) -> None:
        """Build the PuLP problem."""
        self._problem, self._vars = pulp_problem(form, coefficients)

    def update(self, form: MilpFormulation, coefficients: Coefficients) -> None:
        """Rebuild the PuLP problem with the new numbers."""
        self.load(form, coefficients)

    def solve(self, *, time_limit: float | None, gap: float, hint: np.ndarray | None,
              presolve: bool | None = None) -> RawResult:
        """Solve with CBC; the best bound is read from CBC's log when it stops early.

        ``presolve=None`` keeps CBC's default."""
        import pulp

        if hint is not None:
            for var, value in zip(self._vars, hint):
                var.setInitialValue(float(value))
        with tempfile.TemporaryDirectory(prefix="d3opt-cbc-") as folder:
            log = Path(folder) / "cbc.log"
            with warnings.catch_warnings():
                # PuLP 3.3 flags its bundled CBC for removal in 4.0; DESIGN pins PuLP 3.3.
                warnings.simplefilter("ignore", DeprecationWarning)
                command = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=gap,
                                            gapAbs=0.0, warmStart=hint is not None,
                                            presolve=presolve, logPath=str(log))
            try:
                self._problem.solve(command)
            except pulp.PulpSolverError as err:
                # The bundled CBC can crash when the time limit strikes while it is still
                # processing a MIP start; the caller then falls back on the hint itself.
                if hint is not None and time_limit is not None:
                    return RawResult("no_solution", message=f"cbc stopped abnormally: {err}")
                raise SolverError(f"MILP backend 'cbc' failed: {err}") from err
            text = log.read_text() if log.exists() else ""
        status, sol_status = self._problem.status, self._problem.sol_status
        message = f"status {pulp.LpStatus[status]}, solution {pulp.LpSolution[sol_status]}"
        # CBC reports "infeasible" when it stops on time before finding a solution: the log
        # tells the two apart.
        timed = re.search(r"Stopped on time", text) is not None
        found = sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
        if timed and not found:
            return RawResult("no_solution", message=message)
        if status == pulp.LpStatusInfeasible or sol_status == pulp.LpSolutionInfeasible:
            return RawResult("infeasible", message=message)
        if not found:
            raise SolverError(f"MILP backend 'cbc' stopped: {message}")
        values = np.array([var.varValue or 0.0 for var in self._vars], dtype=float)
        objective = float(pulp.value(self._problem.objective) or 0.0)
        if sol_status == pulp.LpSolutionOptimal and not timed:
            return RawResult("optimal", values=values, objective=objective, bound=objective,
                             message=message)
        bound = re.search(r"Lower bound:\s*([-+0-9.eE]+)", text)
        return RawResult("time_limit" if timed else "feasible", values=values,
                         objective=objective, bound=float(bound.group(1)) if bound else None,
                         message=message)
