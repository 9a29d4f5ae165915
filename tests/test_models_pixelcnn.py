import torch

from vaebench.models.pixelcnn import GatedPixelCNN


def test_each_position_sees_only_the_codes_before_it_in_raster_order():
    torch.manual_seed(0)
    net = GatedPixelCNN(num_codes=6, channels=8, layers=3, kernel=3)
    codes = torch.randint(0, 6, (1, 5, 5))
    base = net(codes)
    for i, j in [(0, 0), (2, 2), (2, 4), (4, 0)]:
        changed = codes.clone()
        changed[0, i, j] = (changed[0, i, j] + 1) % 6
        diff = (net(changed) - base).abs().amax(1)[0]  # (H, W)
        order = torch.arange(25).view(5, 5)
        assert diff[order <= i * 5 + j].max() == 0, (i, j)  # itself and everything before: untouched
        if i * 5 + j < 24:
            assert diff[order > i * 5 + j].max() > 0  # some later position depends on it


def test_nll_and_sample_shapes():
    torch.manual_seed(0)
    net = GatedPixelCNN(num_codes=4, channels=8, layers=2)
    codes = torch.randint(0, 4, (3, 4, 4))
    assert net.nll(codes).shape == (3,) and (net.nll(codes) > 0).all()
    s = net.sample(2, (4, 4), "cpu", torch.Generator().manual_seed(0))
    assert s.shape == (2, 4, 4) and s.min() >= 0 and s.max() < 4


def test_rows_depend_only_on_rows_above_so_sampling_may_crop():
    torch.manual_seed(0)
    net = GatedPixelCNN(num_codes=5, channels=8, layers=3)
    codes = torch.randint(0, 5, (2, 6, 6))
    assert torch.allclose(net(codes[:, :3]), net(codes)[:, :, :3], atol=1e-6)
