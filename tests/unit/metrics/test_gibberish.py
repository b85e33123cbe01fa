

def test_too_little_human_text_is_an_error_that_says_what_to_do():
    import pytest

    from collapselab.metrics.gibberish import fit_gibberish_scorer

    with pytest.raises(ValueError, match=r"too few to calibrate word order.*evaluation.metrics"):
        fit_gibberish_scorer(["the cat sat on a mat today"], ["a dog ran in the park now"])
