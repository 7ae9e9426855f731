"""The rush's logins wait out a 503 + Retry-After (admission control refusing a burst), as the app does."""

from __future__ import annotations

from jatra.rush.http import Answer
from jatra.rush.runner import LOGIN_ATTEMPTS, _patiently


class Answers:
    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> Answer:
        self.calls += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


async def test_a_refusal_with_retry_after_is_waited_out() -> None:
    call = Answers(Answer(503, b"", 0.0), Answer(503, b"", 0.0), Answer(202, b"{}"))
    assert (await _patiently(call)).status_code == 202
    assert call.calls == 3


async def test_a_503_without_retry_after_is_not_retried() -> None:
    call = Answers(Answer(503, b""), Answer(202, b"{}"))
    assert (await _patiently(call)).status_code == 503
    assert call.calls == 1


async def test_refusals_are_waited_out_a_bounded_number_of_times() -> None:
    call = Answers(Answer(503, b"", 0.0))
    assert (await _patiently(call)).status_code == 503
    assert call.calls == LOGIN_ATTEMPTS
