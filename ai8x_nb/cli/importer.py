"""`ai8x-nb import CHECKPOINT YAML [--device D] [--input-shape C H W] [--out MODEL.keras]`."""


def add_parser(subparsers):
    """Register the `import` subcommand."""
    parser = subparsers.add_parser(
        "import", help="import a trained network of the synthesis tool (checkpoint + YAML)",
        description="Read a quantized checkpoint (.pth.tar, without running anything in it) and "
                    "its ai8xize.py network YAML, build the quantized Keras model of "
                    "ai8x_nb.layers with the checkpoint's integer weights and output shifts, "
                    "print its layers and save it as a .keras file.")
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="the -q.pth.tar file")
    parser.add_argument("yaml", metavar="YAML", help="the network description (networks/*.yaml)")
    parser.add_argument("--device", default=None, help="MAX78000 (default) or MAX78002")
    parser.add_argument("--input-shape", type=int, nargs="+", default=None, metavar="N",
                        help="the input channel-first, e.g. 1 28 28 (default: the shape of the "
                             "tool's tests/sample_<dataset>.npy beside the YAML's folder)")
    parser.add_argument("--out", default=None,
                        help="the .keras file to write (default: <arch>.keras)")
    return parser


def run(args):
    """Run `import`; prints the integer layers and the saved file; returns 0."""
    from ai8x_nb.quantize import convert  # imports Keras: keep `ai8x-nb --help` fast
    from ai8x_nb.zoo.importer import import_synthesis

    model = import_synthesis(args.checkpoint, args.yaml, device=args.device,
                             input_shape=args.input_shape)
    out = args.out or f"{model.name}.keras"
    model.save(out)
    print(convert(model))
    print(f"imported {model.name} ({len(model.layers)} Keras layers) -> {out}")
    return 0
