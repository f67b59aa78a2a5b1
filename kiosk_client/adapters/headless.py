"""Stand-ins for the screen when the engine runs without one (benchmarks, `--headless` tools)."""

from __future__ import annotations

from ..core.control_protocol import InputMessage
from ..core.ports import InputOutcome


class NoFormView:
    """There is no form view without a screen: every input is refused, plainly."""

    async def apply(self, message: InputMessage) -> InputOutcome:
        return InputOutcome("no_form", "this kiosk runs without a form view")
