"""model.nets: shapes for every net at several depths and odd lengths; checkpoints round trip."""

import pytest
import torch

from model import checkpoint
from model.nets import (
    DNN,
    AudioTFiLMNet,
    AudioUNet,
    Spline,
    SubPixel1d,
    parameter_count,
)

SMALL = dict(base_filters=8, max_filters=32, max_kernel=17)


def test_subpixel_interleaves_channels_into_time():
    x = torch.arange(12.0).view(1, 4, 3)  # channels (c*r + i), r = 2, C = 2
    y = SubPixel1d(2)(x)
    assert y.shape == (1, 2, 6)
    # out[c, t*r + i] = in[c*r + i, t]
    assert y[0, 0].tolist() == [0, 3, 1, 4, 2, 5]
    assert y[0, 1].tolist() == [6, 9, 7, 10, 8, 11]


@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("length", [1, 1000, 4097, 8192])
@pytest.mark.parametrize("cls", [AudioUNet, AudioTFiLMNet])
def test_unets_keep_shape(cls, depth, length):
    kwargs = dict(SMALL, depth=depth)
    if cls is AudioTFiLMNet:
        kwargs["tfilm_block"] = 64
    net = cls(**kwargs).eval()
    with torch.no_grad():
        y = net(torch.randn(2, 1, length))
    assert y.shape == (2, 1, length)


@pytest.mark.parametrize("length", [1, 255, 1001])
@pytest.mark.parametrize("net", [DNN(frame=64, hidden=32), Spline()])
def test_baselines_keep_shape(net, length):
    assert net.eval()(torch.randn(3, 1, length)).shape == (3, 1, length)


def test_unet_starts_at_the_spline_input():
    net = AudioUNet(**SMALL).eval()
    x = torch.randn(1, 1, 3000)
    assert torch.equal(net(x), x)


def test_paper_defaults():
    net = AudioUNet()
    convs = [block.conv for block in net.down]
    assert [c.out_channels for c in convs] == [128, 256, 512, 512]
    assert [c.kernel_size[0] for c in convs] == [65, 33, 17, 9]


def test_tfilm_starts_as_identity_and_learns_scale():
    from model.nets import TFiLM

    layer = TFiLM(4, block=8)
    x = torch.randn(2, 4, 32)
    assert torch.allclose(layer(x), x)
    torch.nn.init.normal_(layer.affine.weight)
    assert not torch.allclose(layer(x), x)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (AudioUNet, dict(SMALL, depth=3)),
        (AudioTFiLMNet, dict(SMALL, depth=2, tfilm_block=32)),
        (DNN, dict(frame=32, hidden=16)),
    ],
)
@pytest.mark.parametrize("half", [False, True])
def test_checkpoint_round_trip(tmp_path, cls, kwargs, half):
    net = cls(**kwargs).eval()
    with torch.no_grad():  # zero-initialised output layers would make any weights look equal
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "net.safetensors"
    checkpoint.save(
        path, net, init_args=kwargs, input_rate=4000, scale=4, training={"epoch": 3}, half=half
    )
    loaded, meta = checkpoint.load(path)
    assert type(loaded) is cls and not loaded.training
    assert meta["input_rate"] == 4000 and meta["scale"] == 4 and meta["training"] == {"epoch": 3}
    assert checkpoint.read_metadata(path)["args"] == kwargs
    assert parameter_count(loaded) == parameter_count(net)
    x = torch.randn(1, 1, 999)
    with torch.no_grad():
        assert torch.allclose(loaded(x), net(x), atol=1e-2 if half else 1e-6)
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves no temporary behind


def test_checkpoint_with_unknown_class_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "evil.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"class": "os.system", "args": "{}"})
    with pytest.raises(ValueError, match="unknown architecture"):
        checkpoint.load(path)
