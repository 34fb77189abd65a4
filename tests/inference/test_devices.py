"""``--device``: the names taken, a GPU this machine lacks in one line, ``cpu`` without CUDA."""

import pytest
import torch

from benchmark.errors import InputError
from benchmark.inference.devices import check_device_name, torch_device


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_the_names_taken(name):
    assert check_device_name(name) == name


@pytest.mark.parametrize("name", ["gpu", "CUDA", "cuda:", "cuda:x", "cpu:0", "mps", ""])
def test_other_names_are_refused_saying_what_is_taken(name):
    with pytest.raises(ValueError, match=r"expected auto, cpu, cuda or cuda:N"):
        check_device_name(name)


def test_cpu_asks_cuda_nothing(cuda_untouched):
    assert torch_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize(("gpus", "device"), [(0, "cpu"), (1, "cuda")])
def test_auto_is_the_gpu_where_there_is_one(fake_gpus, gpus, device):
    fake_gpus(gpus)
    assert torch_device("auto") == torch.device(device)


@pytest.mark.parametrize(
    ("gpus", "name", "there"),
    [(0, "cuda", "no CUDA GPU"), (0, "cuda:7", "no CUDA GPU"), (2, "cuda:2", "cuda:0 to cuda:1")],
)
def test_a_gpu_the_machine_lacks_is_one_line(fake_gpus, gpus, name, there):
    fake_gpus(gpus)
    with pytest.raises(InputError) as info:
        torch_device(name)
    assert str(info.value) == f"device {name}: not available (this machine has {there})"


def test_the_gpu_asked_for_is_the_one_given(fake_gpus):
    fake_gpus(2)
    assert torch_device("cuda:1") == torch.device("cuda", 1)
    assert torch_device("cuda") == torch.device("cuda")
