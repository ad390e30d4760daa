"""Image training sets with random crop and flip, applied to whole batches of tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

__all__ = ["AugmentedImages"]


class AugmentedImages(Dataset):
    r"""Raw images, normalised and augmented when fetched.

    Every fetch pads an image by ``padding`` black pixels on each side, crops a random
    ``H x W`` window, flips it horizontally with probability 1/2, scales to :math:`[0, 1]` and
    normalises by ``mean`` and ``std`` per channel: torchvision's ``RandomCrop(H, padding)``,
    ``RandomHorizontalFlip()``, ``ToTensor()``, ``Normalize(mean, std)``, computed on a whole
    batch at once (:meth:`__getitems__`, which the DataLoader calls) instead of image by image.

    Parameters
    ----------
    images : torch.Tensor of uint8, shape (n, C, H, W)
    labels : torch.Tensor of int64, shape (n,)
    mean, std : sequence of float, length C
    padding : int

    Notes
    -----
    The random draws use torch's global generator: in DataLoader workers it is seeded from
    the loader's seeded generator, in the main process it is part of the checkpointed RNG
    state, so a run resumes exactly (for the same number of workers).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std, padding: int) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"The 'images' parameter of `AugmentedImages` must be a uint8 tensor of shape (n, C, H, W); "
                f"got {images.dtype} of shape {tuple(images.shape)}."
            )
        self.images = images
        self.labels = labels
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.padding = padding

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.batch(torch.tensor([index]))
        return x[0], y[0]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self.batch(torch.as_tensor(indices))
        return list(zip(x.unbind(0), y.unbind(0)))

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented, normalised images ``(len(index), C, H, W)`` float32 and their labels."""
        x = self.images[index]
        n, _, h, w = x.shape
        p = self.padding
        if p:
            x = F.pad(x, (p, p, p, p))
            top = torch.randint(0, 2 * p + 1, (n, 1, 1, 1))
            left = torch.randint(0, 2 * p + 1, (n, 1, 1, 1))
            rows = (top + torch.arange(h).view(1, 1, h, 1)).expand(n, x.shape[1], h, w + 2 * p)
            x = x.gather(2, rows)
            cols = (left + torch.arange(w).view(1, 1, 1, w)).expand(n, x.shape[1], h, w)
            x = x.gather(3, cols)
        flip = torch.rand(n) < 0.5
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
        return (x.float() / 255.0 - self.mean) / self.std, self.labels[index]
