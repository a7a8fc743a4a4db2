"""The exact headers of the IMDb-derived source files (``tituloPincipal`` is spelled so)."""

MOVIES_HEADER: list[str] = [
    "id", "tituloPincipal", "tituloOriginal", "anoLancamento", "tempoMinutos", "genero",
    "notaMedia", "numeroVotos", "generoArtista", "personagem", "nomeArtista", "anoNascimento",
    "anoFalecimento", "profissao", "titulosMaisConhecidos",
]  # fmt: skip

SERIES_HEADER: list[str] = [*MOVIES_HEADER[:4], "anoTermino", *MOVIES_HEADER[4:]]

HEADERS: dict[str, list[str]] = {"movies": MOVIES_HEADER, "series": SERIES_HEADER}
SEPARATOR = "|"
