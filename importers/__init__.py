"""The legacy importers (issue 6): Shortseller, Momentum, freqtrade, and the generic register_bot.

A leaf app: it may import trading, botconfig, audit and analytics; none of them imports it.
core.py is the framework every source plugs into.
"""
