"""Huffman weight decoder: canonical length-limited Huffman codes decoded at one symbol per cycle per lane."""
