"""edgert.service"""
