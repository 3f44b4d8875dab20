"""Attention Atlas: the build pipeline and command-line interface."""
