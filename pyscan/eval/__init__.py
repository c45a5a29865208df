"""``pyscan eval``: perplexity and KL divergence of models against a base, through llama.cpp.

The engine (llama-cpp-python, the optional extra ``pyscan[eval]``) runs in child processes;
this package never imports it itself.
"""
