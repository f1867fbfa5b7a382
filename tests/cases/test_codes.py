"""Pseudonymous codes and dedup keys (pure)."""

from cases import codes, dedup


def test_case_codes_are_random_and_carry_a_check_character():
    drawn = {codes.new_case_code() for _ in range(200)}
    assert len(drawn) == 200
    for code in drawn:
        assert codes.is_valid(code) and code.startswith("CL-") and len(code) == 12


def test_a_single_typo_is_caught_by_the_check_character():
    code = codes.new_case_code()
    payload = code.replace("-", "")[2:]
    for i, ch in enumerate(payload):
        for other in codes.ALPHABET:
            if other == ch:
                continue
            typo = payload[:i] + other + payload[i + 1:]
            assert not codes.is_valid(f"CL-{typo[:4]}-{typo[4:]}")


def test_codes_are_checked_for_shape_and_prefix():
    assert not codes.is_valid("CL-1234")
    assert not codes.is_valid(codes.new_person_code())
    assert codes.is_valid(codes.new_person_code(), prefix="P")
    assert codes.is_valid(codes.new_case_code().lower())


def test_spellings_of_one_name_share_a_sound_key():
    assert dedup.phonetic("Tshibanda") == dedup.phonetic("Chibanda") == dedup.phonetic("Shibanda")
    assert dedup.phonetic("Kabeya Mwamba") == dedup.phonetic("mwamba KABEIA")
    assert dedup.phonetic("Élodie") == dedup.phonetic("Elodie")
    assert dedup.phonetic("Kabeya") != dedup.phonetic("Ngoy")


def test_keys_are_keyed_hashes_that_reveal_nothing():
    keys = dedup.raw_keys(given="Mwamba", family="Kabeya", sex="male", birth_year=2013, phone="+243 970 000 001",
                          site_code="KZ-001")
    assert sorted(k for k, _ in keys) == ["name_site", "name_year", "name_year", "phone"]
    hashed = [dedup.hashed("secret-one-0123456789", k, v) for k, v in keys]
    assert all("wamba" not in h and len(h) == 64 for h in hashed)
    assert hashed != [dedup.hashed("secret-two-0123456789", k, v) for k, v in keys]


def test_name_keys_meet_when_birth_years_differ_by_at_most_one():
    def windows(year):
        return {v for k, v in dedup.raw_keys(given="Ngoy", family=None, sex="female", birth_year=year, phone=None,
                                             site_code=None)}
    assert windows(2012) & windows(2013) and windows(2012) & windows(2011)
    assert not windows(2012) & windows(2014)
