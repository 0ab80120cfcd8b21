"""edgert.platform"""
