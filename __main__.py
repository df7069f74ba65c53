"""Entry point of `pulumi up`: validate the stack config, then build the stack."""

from stacks.program import build, read_stack_config

build(read_stack_config())
