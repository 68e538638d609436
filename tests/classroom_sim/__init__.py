"""The class simulation: the student edition filled with a pair's answers (``answers.py``) and with plausible wrong
answers (``wrong_answers.py``), run as a pair runs it by ``harness.py``; ``tests/test_class_simulation.py`` asserts
what it saw."""
