"""The benchmark suite (issue 7): a realistic data set and the bench that measures against it.

A leaf app: it may import every other app of ours, and none of them imports it.
"""
