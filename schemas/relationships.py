"""Next-of-kin relationships as words: HL7 table 0063 (NK1-3), in English and Spanish. A code
the table does not have is shown as sent (table 0063 is user-defined and some feeds extend
it); a feed that sends the text instead ("Spouse") is shown as it is."""

from __future__ import annotations

# HL7 v2.5-v2.9 table 0063, code -> (English, Spanish), as they read inside a sentence.
RELATIONSHIPS: dict[str, tuple[str, str]] = {
    "ASC": ("associate", "asociado"),
    "BRO": ("brother", "hermano"),
    "CGV": ("caregiver", "cuidador"),
    "CHD": ("child", "hijo o hija"),
    "DEP": ("dependent", "dependiente"),
    "DOM": ("life partner", "pareja"),
    "EMC": ("emergency contact", "contacto de emergencia"),
    "EME": ("employee", "empleado"),
    "EMR": ("employer", "empleador"),
    "EXF": ("extended family", "familiar"),
    "FCH": ("foster child", "hijo de crianza"),
    "FND": ("friend", "amigo o amiga"),
    "FTH": ("father", "padre"),
    "GCH": ("grandchild", "nieto o nieta"),
    "GRD": ("guardian", "tutor legal"),
    "GRP": ("grandparent", "abuelo o abuela"),
    "MGR": ("manager", "gerente"),
    "MTH": ("mother", "madre"),
    "NCH": ("natural child", "hijo o hija biológica"),
    "NON": ("none", "ninguna"),
    "OAD": ("other adult", "otro adulto"),
    "OTH": ("other", "otra"),
    "OWN": ("owner", "propietario"),
    "PAR": ("parent", "padre o madre"),
    "SCH": ("stepchild", "hijastro o hijastra"),
    "SEL": ("self", "el propio paciente"),
    "SIB": ("sibling", "hermano o hermana"),
    "SIS": ("sister", "hermana"),
    "SPO": ("spouse", "cónyuge"),
    "TRA": ("trainer", "entrenador"),
    "UNK": ("unknown", "desconocida"),
    "WRD": ("ward of court", "pupilo"),
    # Not in the table, but sent by many feeds (local extensions of table 0063).
    "DAU": ("daughter", "hija"),
    "DTR": ("daughter", "hija"),
    "SON": ("son", "hijo"),
    "HUS": ("husband", "esposo"),
    "WIF": ("wife", "esposa"),
}


def relationship_name(code: str, in_language: str = "en") -> str:
    """ "spouse" for SPO (or SPO^Spouse), "cónyuge" in Spanish; other values as sent."""
    identifier, _, text = code.partition("^")
    words = RELATIONSHIPS.get(identifier.strip().upper())
    if words is None:
        return identifier.strip() or text.split("^")[0].strip()
    return words[1] if in_language == "es" else words[0]
