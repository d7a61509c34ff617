"""`lmlab plan`: memory per device of training a GPT under DDP, ZeRO-1/2 and FSDP."""

from __future__ import annotations

from lmlab.cli.options import dumps


def plan_arguments(p) -> None:
    p.add_argument("--preset", help="model preset (default tiny; e.g. small = GPT-2 124M)")
    p.add_argument("--config", metavar="FILE", help="JSON or YAML settings file, as for `lmlab train`")
    p.add_argument("--devices", type=int, default=1, metavar="N", help="number of devices (default 1)")
    p.add_argument("--device-mem", type=float, default=80.0, metavar="GB",
                   help="memory per device in GiB (default 80)")
    p.add_argument("--strategy", nargs="+", default=["all"], metavar="NAME",
                   help="ddp, zero1, zero2, fsdp, or all (default)")
    p.add_argument("--dtype", default=None, help="compute dtype: float32, bfloat16, float16 (default: the "
                                                 "settings' dtype; auto = bfloat16)")
    p.add_argument("--activation-checkpointing", action="store_true", default=None,
                   help="recompute block activations in backward")
    p.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help="micro-batch per device for the activation column (default: the settings' batch_size)")
    p.add_argument("--grad-accum", type=int, default=None, metavar="G", help="micro-steps per optimizer step")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def cmd_plan(args) -> int:
    """memory per device of training a GPT: DDP, ZeRO-1/2, FSDP; largest micro-batch

    Estimate the memory per device of training a GPT (weights, gradients, AdamW state, activations per micro-batch)
    for DDP, ZeRO-1, ZeRO-2 and FSDP (ZeRO-3), the largest micro-batch that fits and the tokens per optimizer step.
    Model settings may be given as --key value, as for `lmlab train`. See docs/training.md.
    """
    from lmlab.recipes import preset_settings
    from lmlab.training.plan import format_plan, plan

    result = plan(preset=args.preset, config_file=args.config, overrides=args.overrides, devices=args.devices,
                  base_settings=preset_settings("gpt", args.preset, config_file=args.config),
                  device_mem_gb=args.device_mem, dtype=args.dtype,
                  activation_checkpointing=args.activation_checkpointing, micro_batch=args.batch_size,
                  grad_accum=args.grad_accum, strategies=args.strategy)
    print(dumps(result.to_dict(), ascii=True) if args.json else format_plan(result))
    return 0
