"""edgert.config"""
