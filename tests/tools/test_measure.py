"""What the measuring scripts say about the machine their numbers come from."""

from tools.measure import cpu_description

XEON = """processor\t: 0
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
processor\t: 1
"""


def test_a_cpu_is_named_with_the_flags_that_decide_its_fast_path():
    expected = "Intel(R) Xeon(R) Processor (amx_bf16 amx_int8 avx512_bf16 avx512_vnni avx2)"
    assert cpu_description(XEON) == expected


def test_a_cpu_without_those_flags_is_named_alone():
    assert cpu_description("model name : AMD EPYC\nflags : fpu sse2\n") == "AMD EPYC"
