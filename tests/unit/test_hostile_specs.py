"""The operator's parser is the second line of defence: every case of the hostile corpus that
admission refuses (tests/integration/test_admission.py) is refused again here, naming the field."""

from __future__ import annotations

import pytest

from ecr_pull_secrets.model.fields import InvalidSpec
from ecr_pull_secrets.model.resource import parse_spec
from tests.hostile_specs import CASES, CEPS, HostileSpec


def test_the_corpus_is_large_and_every_id_is_unique() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_parser_refuses_and_names_the_field(case: HostileSpec) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(case.spec, default_name="app", cluster=case.kind == CEPS)

    assert caught.value.field.startswith(case.field), str(caught.value)
    assert case.field in str(caught.value)
