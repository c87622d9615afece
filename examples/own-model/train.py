"""Train a ResNet-18 on a folder of images the way most people do, then report on it with reportgen.

    python examples/own-model/train.py               # writes tiles/ (once), resnet18-textures.pth and .ts
    reportgen build --config examples/own-model/config.toml        # from the state dict
    reportgen build --config examples/own-model/torchscript.toml   # from the TorchScript archive

Nothing here uses reportgen: plain torchvision with a DataLoader over an image folder, and the
weights saved with torch.save(model.state_dict(), ...). The images are 24x24 tiles of the brick,
grass and gravel photographs that ship with scikit-image, written once into tiles/train/<class>/
and tiles/test/<class>/ (every fourth tile is a test tile), so the report's test images are ones
this script never trained on. About a minute on a 2-core CPU.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import skimage.data
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision import transforms

HERE = Path(__file__).resolve().parent
TILES, SIDE = HERE / "tiles", 24
MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]   # the config repeats these: the model expects them


def write_tiles() -> None:
    for name in ("brick", "grass", "gravel"):
        image = getattr(skimage.data, name)()
        rows, cols = image.shape[0] // SIDE, image.shape[1] // SIDE
        for i in range(rows * cols):
            r, c = divmod(i, cols)
            split = "test" if i % 4 == 3 else "train"
            folder = TILES / split / name
            folder.mkdir(parents=True, exist_ok=True)
            tile = image[r * SIDE:(r + 1) * SIDE, c * SIDE:(c + 1) * SIDE]
            Image.fromarray(np.asarray(tile, np.uint8)).convert("RGB").save(folder / f"{i:03d}.png")


def main() -> None:
    if not TILES.is_dir():
        write_tiles()
    torch.manual_seed(0)
    augment = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                                  transforms.Normalize(MEAN, STD)])
    data = torchvision.datasets.ImageFolder(str(TILES / "train"), transform=augment)
    loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True, drop_last=True)
    model = torchvision.models.resnet18(weights=None, num_classes=len(data.classes))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(6):
        model.train()
        correct = seen = 0
        for x, y in loader:
            optimizer.zero_grad()
            logits = model(x)
            loss_fn(logits, y).backward()
            optimizer.step()
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        print(f"epoch {epoch + 1}: training accuracy {correct / seen:.3f}")
    torch.save(model.state_dict(), HERE / "resnet18-textures.pth")
    # the same network as a TorchScript archive, which needs no code to load (torchscript.toml)
    with warnings.catch_warnings():  # torch.jit is deprecated in favour of torch.export, but widely used
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(model.eval()), HERE / "resnet18-textures.ts")
    print(f"saved {HERE / 'resnet18-textures.pth'} and .ts; classes {data.classes}")


if __name__ == "__main__":
    main()
