"""edgert.runtime"""
