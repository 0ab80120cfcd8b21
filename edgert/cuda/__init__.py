"""edgert.cuda"""
