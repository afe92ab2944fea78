"""Gloo Edge in a box: discovery, validation, translation and the gateway proxy.

See ``helpers.runtime``'s map; ``edge.Gloo`` ties the modules of this folder together.
"""
