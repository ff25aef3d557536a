"""The op contract parser (core/contract.py) on the real header and on edited copies."""

import re

import pytest

from rnnpool_tflm.core import contract as contract_module
from rnnpool_tflm.core.sources import source_dir


def _header() -> str:
    return (source_dir() / contract_module.HEADER_NAME).read_text()


def test_optional_options_carry_their_default_and_the_rest_are_required():
    c = contract_module.contract()
    defaults = {o.key: o.default for o in c.options}
    assert defaults["output_pad_bottom"] == 0 and defaults["output_pad_right"] == 0 and defaults["rnn1_mode"] == 0
    assert defaults["patch_rows"] is None and defaults["padding"] is None
    required = {k: 1 for k, d in defaults.items() if d is None}
    c.check_options(required)  # the optional keys may be left out
    assert c.with_defaults(required) == {**required, "output_pad_bottom": 0, "output_pad_right": 0, "rnn1_mode": 0}
    assert c.without_defaults({**required, "output_pad_bottom": 0, "output_pad_right": 2}) == {
        **required,
        "output_pad_right": 2,
    }
    with pytest.raises(ValueError, match="'padding' is missing"):
        c.check_options({k: v for k, v in required.items() if k != "padding"})
    with pytest.raises(ValueError, match=r"'output_pad_right'=5 is outside \[0, 4\]"):
        c.check_options({**required, "output_pad_right": 5})


def test_a_default_for_an_unknown_option_is_refused():
    text = _header().replace("X(RNN1_MODE, 0)", "X(RNN1_MODE, 0) \\\n  X(NO_SUCH_OPTION, 0)")
    with pytest.raises(RuntimeError, match="NO_SUCH_OPTION"):
        contract_module.parse_contract(text)


def test_a_default_outside_the_range_is_refused():
    with pytest.raises(RuntimeError, match="default of 'output_pad_bottom'"):
        contract_module.parse_contract(_header().replace("X(OUTPUT_PAD_BOTTOM, 0)", "X(OUTPUT_PAD_BOTTOM, 9)"))


def test_every_tensor_has_a_quantization_kind():
    c = contract_module.contract()
    assert set(c.quantization) == {s.name for s in c.inputs + c.outputs}
    assert set(c.quantization.values()) == set(contract_module.QUANTIZATION_KINDS)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda t: re.sub(r'  X\("bias2", FIXED_POINT\) *\\\n', "", t),  # its whole line
            "must name every input and output once",
        ),
        (lambda t: t.replace('X("bias2", FIXED_POINT)', 'X("bias2", ROUNDED)'), "invalid or repeated"),
        (lambda t: t.replace('X("bias2", FIXED_POINT)', 'X("bias1", FIXED_POINT)'), "invalid or repeated"),
    ],
    ids=["missing", "unknown_kind", "repeated"],
)
def test_a_broken_quantization_block_is_refused(edit, message):
    text = edit(_header())
    assert text != _header()
    with pytest.raises(RuntimeError, match=message):
        contract_module.parse_contract(text)
