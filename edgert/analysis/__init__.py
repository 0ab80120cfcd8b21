"""edgert.analysis"""
