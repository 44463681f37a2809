"""The behavioural mechanisms, one module each.

Every function takes arrays and plain numbers (never a config object, a policy or a file) and
returns arrays, so each mechanism can be read, tested and swapped on its own. Random draws are
passed in, made for all N people every step, so runs with the same seed share their luck.
"""
