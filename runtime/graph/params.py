"""Per-parameter input processing at control ticks: validation, sensor filters, ramps, smoothing.

One :class:`ParamState` per authored parameter turns the raw values an
application sets into the value the graph sees, one control tick at a time::

    set(value)  → validate (finite, clamped; label known)            ParamState.validate
                → filter: One Euro | hysteresis (time-stamped)       ParamState.apply
                → target
    each tick   → ramp (if the update asked for one)                 ParamState.step
                  else one-pole smoothing (attack / release) → slew limit

Semantics, exactly:

* **Validation** (:meth:`ParamState.validate`). Continuous and discrete
  parameters take a real number (``bool`` is refused); NaN and ±inf are
  refused; a finite value outside ``[min, max]`` is clamped (the caller is told
  so, see ``clamped``). Discrete values are rounded half up to an integer and
  kept inside ``[ceil(min), floor(max)]``. Labeled parameters take one of their
  labels. Every refusal is a :class:`~cadenza.errors.UsageError` whose ``where``
  is ``parameters.<name>`` and whose message carries the bad value and the valid
  range or labels; a refused value changes nothing.
* **Filters** act on the raw (validated, clamped) input stream, not on ticks:
  each sample carries its time stamp. :class:`OneEuroFilter` is the 1€ filter
  of Casiez, Roussel & Vogel (CHI 2012): a low-pass whose cutoff rises with the
  (itself low-passed) speed of the signal, ``cutoff = min_cutoff + beta·|dx̂|``,
  ``alpha = 1 / (1 + 1/(2π·cutoff·Δt))``, the derivative taken against the
  previous *filtered* value. A sample whose time stamp equals the previous
  one's replaces it (the filter is rewound one sample first), so several
  values set within one tick behave as the last of them. :class:`Hysteresis`
  is a Schmitt trigger: the output jumps to ``max`` once the input is
  ``>= high`` and to ``min`` once it is ``<= low``, and holds otherwise; it
  starts high only when the parameter's default is ``>= high``.
* **Ramps** (``ramp=seconds``, ``shape=`` one of the curve shapes of
  :mod:`cadenza.runtime.graph.nodes`) move the value from where it is when the
  update applies to the new value along the shape, ending exactly on it at
  ``start + ramp``. A ramped update skips the filter and the smoothing: the
  caller asked for that trajectory. The filter is re-seeded at the new value so
  that later sensor samples continue from there.
* **bypass** (a level load) jumps at once: no filter, ramp, smoothing or slew;
  the filter is re-seeded at the new value.
* **Smoothing**: an un-ramped update sets a target that the value approaches
  with a one-pole low-pass, ``v += a·(target − v)`` per tick, with
  ``a = 1 − 0.01^(1/(T·rate))`` so that the value covers 99 % of a step in
  ``T = attack`` seconds when rising and ``T = release`` seconds when falling
  (``T = 0``: at once). The step is then limited to ``slew / rate`` per tick
  when ``slew`` is set. The value snaps onto the target once within ``1e-12``
  of the parameter's span, so a settled parameter stops changing.
* Discrete and labeled parameters switch at once (ramps and smoothing do not
  apply to them); the filters still apply to discrete parameters, before the
  rounding.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from cadenza.errors import GraphError, UsageError
from cadenza.runtime.graph.nodes import SHAPES
from cadenza.runtime.graph.spec import Hysteresis as HysteresisSpec
from cadenza.runtime.graph.spec import OneEuro, Parameter

ParamValue = float | int | str

_TWO_PI = 2.0 * math.pi
_SNAP = 1e-12


def describe_value(value: object) -> str:
    """``repr`` of a bad value plus its kind where the repr alone could mislead."""
    if isinstance(value, bool):
        return f"{value!r} (a bool)"
    if isinstance(value, str):
        return f"{value!r} (a label)"
    if isinstance(value, numbers.Real):
        return repr(float(value))
    return f"{value!r} (a {type(value).__name__})"


def check_seconds(value: object, what: str, *, where: str) -> float:
    """A finite number of seconds ``>= 0`` (not a bool), or a :class:`UsageError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise UsageError(f"{what} must be a finite number of seconds >= 0, got {describe_value(value)}", where=where)
    v = float(value)
    if v < 0.0:
        raise UsageError(f"{what} must be a finite number of seconds >= 0, got {v!r}", where=where)
    return v


def smoothing_coefficient(seconds: float, rate: float) -> float:
    """One-pole coefficient that covers 99 % of a step in ``seconds`` at ``rate`` ticks per second."""
    if seconds <= 0.0:
        return 1.0
    return 1.0 - 0.01 ** (1.0 / (seconds * rate))


def _alpha(cutoff: float, dt: float) -> float:
    r = _TWO_PI * cutoff * dt
    return r / (r + 1.0)


class OneEuroFilter:
    """The 1€ filter over time-stamped samples (see the module docstring).

    ``filter(x, t)`` returns the filtered value. The first sample (or the first
    after :meth:`reset`) passes through unchanged. Time stamps must not go
    backwards; an equal time stamp replaces the previous sample.
    """

    __slots__ = ("min_cutoff", "beta", "d_cutoff", "_t", "_x", "_dx", "_prev")

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        for name, v, low in (("min_cutoff", min_cutoff, 0.0), ("d_cutoff", d_cutoff, 0.0)):
            if not math.isfinite(v) or v <= low:
                raise GraphError(f"{name} must be a finite number of Hz > 0, got {v!r}", where="filter.one_euro")
        if not math.isfinite(beta) or beta < 0.0:
            raise GraphError(f"beta must be a finite number >= 0, got {beta!r}", where="filter.one_euro")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self._t: float | None = None
        self._x = 0.0
        self._dx = 0.0
        self._prev: tuple[float, float, float] | None = None

    def reset(self, x: float | None = None, t: float | None = None) -> None:
        """Forget the history; with ``x`` and ``t``, start from that sample."""
        self._t = t if x is not None else None
        self._x = 0.0 if x is None else float(x)
        self._dx = 0.0
        self._prev = None

    def filter(self, x: float, t: float) -> float:
        if self._t is None:
            self._t, self._x, self._dx = t, x, 0.0
            return x
        if t <= self._t:  # same tick: rewind one sample, then apply this one instead
            if self._prev is None or t <= self._prev[0]:
                self._t, self._x, self._dx, self._prev = t, x, 0.0, None
                return x
            self._t, self._x, self._dx = self._prev
        self._prev = (self._t, self._x, self._dx)
        dt = t - self._t
        dx = (x - self._x) / dt
        dx_hat = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * abs(dx_hat)
        x_hat = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t, self._x, self._dx = t, x_hat, dx_hat
        return x_hat

    def snapshot(self) -> tuple[object, ...]:
        return (self._t, self._x, self._dx, self._prev)


class Hysteresis:
    """A Schmitt trigger: ``out_high`` once the input is ``>= high``, ``out_low`` once ``<= low``."""

    __slots__ = ("low", "high", "out_low", "out_high", "is_high")

    def __init__(self, low: float, high: float, out_low: float, out_high: float, *, start_high: bool = False) -> None:
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            raise GraphError(f"needs finite low < high, got low={low!r}, high={high!r}", where="filter.hysteresis")
        self.low = float(low)
        self.high = float(high)
        self.out_low = float(out_low)
        self.out_high = float(out_high)
        self.is_high = start_high

    def reset(self, x: float) -> None:
        """Re-seed after a jump or ramp to ``x``: high if ``x >= high``, low if ``x <= low``, else kept."""
        if x >= self.high:
            self.is_high = True
        elif x <= self.low:
            self.is_high = False

    def filter(self, x: float, t: float = 0.0) -> float:
        self.reset(x)
        return self.out_high if self.is_high else self.out_low

    def snapshot(self) -> tuple[object, ...]:
        return (self.is_high,)


@dataclass(frozen=True)
class Ramp:
    """A ramp in progress: from ``start_value`` at ``start`` to ``end_value`` at ``start + duration``."""

    start: float
    duration: float
    start_value: float
    end_value: float
    shape: str

    def value_at(self, t: float) -> float | None:
        """The ramp's value at ``t``; ``None`` once it is over (the value is then ``end_value``)."""
        if self.duration <= 0.0:
            return None
        u = (t - self.start) / self.duration
        if u >= 1.0:
            return None
        s = SHAPES[self.shape](u if u > 0.0 else 0.0)
        return self.start_value + (self.end_value - self.start_value) * s


class ParamState:
    """One parameter's live value: validation, filter, ramp, smoothing and slew (see the module docstring)."""

    __slots__ = (
        "param", "name", "kind", "rate", "value", "target", "ramp", "filter",
        "_attack", "_release", "_slew_step", "_snap", "_lo", "_hi",
    )

    def __init__(self, param: Parameter, rate: float) -> None:
        self.param = param
        self.name = param.name
        self.kind = param.type
        self.rate = float(rate)
        where = f"parameters.{param.name}"
        self.filter: OneEuroFilter | Hysteresis | None = None
        self.ramp: Ramp | None = None
        if param.type == "labeled":
            if not param.labels:
                raise GraphError("a labeled parameter needs at least one label", where=where)
            self._lo = self._hi = 0.0
            default: ParamValue = param.default if isinstance(param.default, str) else param.labels[0]
            if default not in param.labels:
                raise GraphError(f"default {default!r} is not one of the labels {list(param.labels)}", where=where)
        elif param.type in ("continuous", "discrete"):
            lo, hi = float(param.min), float(param.max)
            if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
                raise GraphError(f"needs finite min < max, got min={param.min!r}, max={param.max!r}", where=where)
            if param.type == "discrete":
                lo, hi = float(math.ceil(lo)), float(math.floor(hi))
                if hi < lo:
                    raise GraphError(f"[{param.min!r}, {param.max!r}] holds no integer", where=where)
            self._lo, self._hi = lo, hi
            default = self._finish(float(self.validate(param.default, where=f"{where}.default")[0]))
            f = param.filter
            if isinstance(f, OneEuro):
                self.filter = OneEuroFilter(f.min_cutoff, f.beta, f.d_cutoff)
            elif isinstance(f, HysteresisSpec):
                self.filter = Hysteresis(f.low, f.high, lo, hi, start_high=float(default) >= f.high)
        else:
            raise GraphError(f"unknown parameter type {param.type!r}; use continuous, discrete or labeled", where=where)
        sm = param.smoothing
        for what, v in (("attack", sm.attack), ("release", sm.release)):
            if not math.isfinite(v) or v < 0.0:
                raise GraphError(f"smoothing {what} must be a finite number of seconds >= 0, got {v!r}", where=where)
        if sm.slew is not None and (not math.isfinite(sm.slew) or sm.slew <= 0.0):
            raise GraphError(f"smoothing slew must be a finite number of units per second > 0, got {sm.slew!r}",
                             where=where)
        self._attack = smoothing_coefficient(sm.attack, self.rate)
        self._release = smoothing_coefficient(sm.release, self.rate)
        self._slew_step = math.inf if sm.slew is None else sm.slew / self.rate
        self._snap = _SNAP * (self._hi - self._lo)
        self.value: ParamValue = default
        self.target: ParamValue = default
        self.validate(param.safe_value, where=f"{where}.safe")

    # ----------------------------------------------------------- validation
    def validate(self, value: object, *, where: str | None = None) -> tuple[ParamValue, bool]:
        """``(value, clamped)``: the value the parameter takes (unrounded for discrete) and whether it was clamped.

        Raises :class:`UsageError` (nothing changes) for NaN, ±inf, a bool, a
        label for a numeric parameter, a number for a labeled one, an unknown
        label or any other type.
        """
        if self.kind != "labeled" and (type(value) is float or type(value) is int) and math.isfinite(value):
            # the common case, in a few steps (every SetParameters runs it, on cold caches); messages below
            v = float(value)
            if v < self._lo:
                return self._lo, True
            if v > self._hi:
                return self._hi, True
            return v, False
        where = where or f"parameters.{self.name}"
        if self.kind == "labeled":
            labels = self.param.labels
            if isinstance(value, str) and value in labels:
                return value, False
            raise UsageError(f"must be one of the labels {', '.join(map(repr, labels))}, got {describe_value(value)}",
                             where=where)
        rng = f"[{self._lo:g}, {self._hi:g}]"
        kind = "an integer" if self.kind == "discrete" else "a finite number"
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise UsageError(f"must be {kind} in {rng}, got {describe_value(value)}", where=where)
        v = float(value)
        if not math.isfinite(v):
            raise UsageError(f"must be {kind} in {rng}, got {v!r}", where=where)
        if v < self._lo:
            return self._lo, True
        if v > self._hi:
            return self._hi, True
        return v, False

    def _finish(self, v: float) -> ParamValue:
        if self.kind == "discrete":
            return min(max(math.floor(v + 0.5), int(self._lo)), int(self._hi))
        return v

    # -------------------------------------------------------------- updates
    def apply(self, value: ParamValue, t: float, *, ramp: float | None = None, shape: str = "linear",
              bypass: bool = False) -> bool:
        """Apply a validated value at time ``t``; True when the value itself changed now.

        Continuous parameters without ``bypass`` or a ramp only get a new
        target here; :meth:`step` moves the value.
        """
        if self.kind == "labeled":
            changed = value != self.value
            self.value = self.target = value
            return changed
        assert not isinstance(value, str)
        x = float(value)
        if bypass or ramp is not None:
            if self.filter is not None:
                if isinstance(self.filter, OneEuroFilter):
                    self.filter.reset(x, t)
                else:
                    self.filter.reset(x)
        elif self.filter is not None:
            x = self.filter.filter(x, t)
        new = self._finish(x)
        if self.kind == "discrete":
            changed = new != self.value
            self.value = self.target = new
            return changed
        self.target = new
        if bypass:
            changed = new != self.value
            self.value = new
            self.ramp = None
            return changed
        if ramp is not None:
            assert not isinstance(self.value, str)
            self.ramp = Ramp(t, ramp, float(self.value), float(new), shape)
            return False
        self.ramp = None
        return False

    def step(self, t: float) -> bool:
        """Advance to tick time ``t``; True when the value changed."""
        r = self.ramp
        v = self.value
        if r is not None:
            rv = r.value_at(t)
            if rv is None:
                self.ramp = None
                new: float = r.end_value
            else:
                new = rv
        else:
            target = self.target
            if v == target or self.kind != "continuous":
                return False
            assert isinstance(v, float) and isinstance(target, float)
            diff = target - v
            d = diff * (self._attack if diff > 0.0 else self._release)
            s = self._slew_step
            if d > s:
                d = s
            elif d < -s:
                d = -s
            new = v + d
            if abs(target - new) <= self._snap:
                new = target
        if new == v:
            return False
        self.value = new
        return True

    def snapshot(self) -> tuple[object, ...]:
        """Everything that evolves, as plain comparable values."""
        f = None if self.filter is None else self.filter.snapshot()
        return (self.value, self.target, self.ramp, f)
