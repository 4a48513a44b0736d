"""asyncffi"""
