"""The vendor's trained networks by name: files in an ai8x-synthesis folder, classes, status.

The synthesis tool's repository ships trained checkpoints (`trained/*-q.pth.tar`), their
network descriptions (`networks/*.yaml`) and sample inputs (`tests/sample_*.npy`); its
`gen-demos-max78000.sh` lists which belong together. `vendor_network(name)` finds them in the
folder named by `$AI8X_SYNTHESIS_DIR` (or `synthesis_dir=`), `import_vendor(name)` imports one,
and `vendor_sample(name)` reads its sample in the model's (channels-last) layout.
"""

import dataclasses
import os
from pathlib import Path

import numpy as np

from ai8x_nb.errors import ZooImportError

__all__ = ["VENDOR_NETWORKS", "VendorNetwork", "vendor_network", "vendor_sample",
           "import_vendor"]

KWS20_CLASSES = ("up", "down", "left", "right", "stop", "go", "yes", "no", "on", "off", "one",
                 "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero",
                 "unknown")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


@dataclasses.dataclass(frozen=True)
class VendorNetwork:
    """One trained network of the vendor's synthesis repository.

    Attributes:
        name: the workbench's short name.
        checkpoint: file name under `trained/`.
        yaml: file name under `networks/`.
        classes: class names of its outputs, or None (not a classifier / unknown).
        importable: False when the workbench cannot represent it yet (`missing` says why).
        missing: what the import still lacks.
    """

    name: str
    checkpoint: str
    yaml: str
    classes: tuple = None
    importable: bool = True
    missing: str = ""

    def paths(self, synthesis_dir=None):
        """(checkpoint, yaml) paths in the synthesis folder.

        Raises:
            ZooImportError: no folder given or set, or the files are not in it.
        """
        folder = synthesis_dir or os.environ.get("AI8X_SYNTHESIS_DIR")
        if not folder:
            raise ZooImportError(
                "The vendor's networks live in an ai8x-synthesis folder; pass synthesis_dir= "
                "or set AI8X_SYNTHESIS_DIR (git clone "
                "https://github.com/analogdevicesinc/ai8x-synthesis).")
        folder = Path(folder)
        files = (folder / "trained" / self.checkpoint, folder / "networks" / self.yaml)
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise ZooImportError(f"Network {self.name!r}: {', '.join(missing)} not found in the "
                                 f"synthesis folder {str(folder)!r}.")
        return files


VENDOR_NETWORKS = {n.name: n for n in (
    VendorNetwork("mnist", "ai85-mnist-qat8-q.pth.tar", "mnist-chw-ai85.yaml",
                  tuple(str(i) for i in range(10))),
    VendorNetwork("cifar10", "ai85-cifar10-qat8-q.pth.tar", "cifar10-nas.yaml",
                  CIFAR10_CLASSES),
    VendorNetwork("kws20_v3", "ai85-kws20_v3-qat8-q.pth.tar", "kws20-v3-hwc.yaml",
                  KWS20_CLASSES),
    VendorNetwork("catsdogs", "ai85-catsdogs-qat8-q.pth.tar", "cats-dogs-hwc.yaml",
                  ("cat", "dog")),
    VendorNetwork("camvid_unet", "ai85-camvid-unet-large-fakept-q.pth.tar",
                  "camvid-unet-large-fakept.yaml"),
    VendorNetwork("aisegment_unet", "ai85-aisegment-unet-large-fakept-q.pth.tar",
                  "aisegment-unet-large-fakept.yaml"),
    VendorNetwork("svhn_tinierssd", "ai85-svhn-tinierssd-qat8-q.pth.tar",
                  "svhn-tinierssd.yaml"),
    VendorNetwork("facedet_tinierssd", "ai85-facedet-tinierssd-qat8-q.pth.tar",
                  "ai85-facedet-tinierssd.yaml"),
)}
"""The vendor's trained networks (its gen-demos-max78000.sh), by short name."""


def vendor_network(name):
    """The `VendorNetwork` called `name`.

    Raises:
        ZooImportError: unknown name (the message lists the known ones).
    """
    try:
        return VENDOR_NETWORKS[str(name).lower()]
    except KeyError:
        raise ZooImportError(f"No vendor network {name!r}; known: "
                             f"{', '.join(VENDOR_NETWORKS)}.") from None


def vendor_sample(name, synthesis_dir=None):
    """The vendor's sample input of a network, in the Keras model's channels-last layout.

    Returns:
        An int64 array without a batch axis ((H, W, C) or (L, C)).
    """
    from ai8x_nb.zoo.network import read_network, sample_file

    _, yaml = vendor_network(name).paths(synthesis_dir)
    return np.moveaxis(np.load(sample_file(read_network(yaml)), allow_pickle=False), 0, -1)


def import_vendor(name, device=None, synthesis_dir=None):
    """Import a vendor network by name (`import_synthesis` on its files).

    Raises:
        ZooImportError: unknown name, files missing, or not representable yet (says what is
            missing).

    Example:

    >>> model = import_vendor("kws20_v3")  # doctest: +SKIP
    """
    from ai8x_nb.zoo.importer import import_synthesis

    network = vendor_network(name)
    checkpoint, yaml = network.paths(synthesis_dir)
    if not network.importable:
        # The importer names every layer and key; run it for that message.
        import_synthesis(checkpoint, yaml, device)
        raise ZooImportError(f"Network {name!r} needs {network.missing}.")  # pragma: no cover
    return import_synthesis(checkpoint, yaml, device)
