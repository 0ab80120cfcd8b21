"""edgert.quant"""
