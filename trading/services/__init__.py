"""Every write to the trading schema. One module per concern:

- tokens: API tokens for bots and staff.
- ingest: set-based writes of what bots send (trades, candles, ...).
"""
