"""Request and response bodies of the HTTP API (separate models, with OpenAPI examples)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AttributeFilterIn",
    "BatchRequest",
    "BatchResponse",
    "ErrorResponse",
    "HealthResponse",
    "ItemOut",
    "ItemSearchResponse",
    "ModelInfo",
    "RecommendRequest",
    "RecommendResponse",
    "ReloadRequest",
    "ReloadResponse",
    "SimilarRequest",
    "SimilarResponse",
]

Id = int | str
"""A raw user or item id: the bundle's ids are integers or strings."""

# Hard caps of the schema; the service's settings may set lower limits (422 as well).
MAX_K = 1000
MAX_LIST = 1000
MAX_BATCH = 1000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttributeFilterIn(_In):
    """Keep items whose attribute is one of ``any_of`` (labels) or in ``[min, max]`` (numbers)."""

    any_of: list[str] | None = Field(
        None, min_length=1, max_length=100, description="Labels, any of which matches."
    )
    min: float | None = Field(None, description="Smallest value kept (numeric attributes).")
    max: float | None = Field(None, description="Largest value kept (numeric attributes).")

    @model_validator(mode="after")
    def _something(self) -> AttributeFilterIn:
        if self.any_of is None and self.min is None and self.max is None:
            raise ValueError("give any_of, min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class _RecommendFields(_In):
    user_id: Id | None = Field(None, description="Raw id of a user the model was trained on.")
    recent_items: list[Id] | None = Field(
        None,
        max_length=MAX_LIST,
        description=(
            "Raw ids of items the user consumed, oldest first, newest last: used when the model "
            "does not know the user (unknown ids are ignored and listed)."
        ),
    )
    k: int = Field(10, ge=1, le=MAX_K, description="Number of items to return.")
    exclude_seen: bool = Field(
        True, description="Drop the user's training items and the given recent items."
    )
    include_items: list[Id] | None = Field(
        None, max_length=MAX_LIST, description="Rank only among these items."
    )
    exclude_items: list[Id] | None = Field(
        None, max_length=MAX_LIST, description="Never return these items."
    )
    genres: list[str] | None = Field(
        None, min_length=1, max_length=100, description="Shortcut for filters.genres.any_of."
    )
    year_min: float | None = Field(None, description="Shortcut for filters.year.min.")
    year_max: float | None = Field(None, description="Shortcut for filters.year.max.")
    filters: dict[str, AttributeFilterIn] | None = Field(
        None,
        max_length=20,
        description="Item attribute filters, by attribute name (see GET /v1/model).",
    )
    context: dict[str, str | float | int | bool] | None = Field(
        None,
        max_length=50,
        description="Request context features (time, device...); names the model does "
        "not use are ignored and listed in ignored_context.",
    )


class RecommendRequest(_RecommendFields):
    """One user (known id, or a history of recent items, or both)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"user_id": 196, "k": 5},
                {"recent_items": [1, 50, 181], "k": 5, "genres": ["Comedy"], "year_min": 1990},
            ]
        },
    )


class ItemOut(BaseModel):
    """One recommended item."""

    item_id: Id
    score: float
    title: str | None = None
    genres: list[str] | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Other item attributes of the bundle."
    )


class RecommendResponse(BaseModel):
    """A recommendation list and how it was made."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": 196,
                    "items": [
                        {
                            "item_id": 286,
                            "score": 0.83,
                            "title": "English Patient, The (1996)",
                            "genres": ["Drama", "Romance", "War"],
                            "metadata": {"year": 1996.0},
                        }
                    ],
                    "model": "ease",
                    "model_version": "3f9c2a1b7d4e5f60",
                    "fallback": "none",
                    "unknown_items": [],
                    "reranked": False,
                    "ignored_context": [],
                }
            ]
        }
    )

    user_id: Id | None
    items: list[ItemOut]
    model: str = Field(description="The bundle's model name.")
    model_version: str = Field(description="First 16 hex digits of the bundle's content hash.")
    fallback: Literal["none", "history", "popularity"] = Field(
        description="none: the model's scores of a known user; history: scored from recent_items; "
        "popularity: neither was possible."
    )
    unknown_items: list[Id] = Field(
        description="Given item ids that are not in the catalog (ignored)."
    )
    reranked: bool = Field(False, description="Re-ranked by the second-stage bundle.")
    history_source: Literal["bundle", "events", "request", "none"] = Field(
        "none",
        description="History behind the list: bundle (the model's known user), events (the "
        "user's bundle history plus its events newer than the bundle), request (recent_items) "
        "or none (popularity).",
    )
    ignored_context: list[str] = Field(default_factory=list)


class BatchRequest(_In):
    """Several requests answered together (at most ``max_batch_users``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"requests": [{"user_id": 196, "k": 3}, {"recent_items": [1, 2], "k": 3}]}]
        },
    )

    requests: list[RecommendRequest] = Field(min_length=1, max_length=MAX_BATCH)


class BatchResponse(BaseModel):
    results: list[RecommendResponse]
    model: str
    model_version: str


class SimilarRequest(_In):
    """Items most similar to one item under the model."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"item_id": 50, "k": 5}]}
    )

    item_id: Id
    k: int = Field(10, ge=1, le=MAX_K)


class SimilarResponse(BaseModel):
    item_id: Id
    items: list[ItemOut]
    model: str
    model_version: str


class ItemSearchResponse(BaseModel):
    """Catalog items whose title contains the query (for the demo page's history builder)."""

    items: list[ItemOut]


class HealthResponse(BaseModel):
    status: str
    model_version: str | None = None


class ModelInfo(BaseModel):
    """The served bundle."""

    model: str
    version: str
    content_sha256: str | None
    dataset_sha256: str | None
    config: dict[str, Any]
    metrics: dict[str, Any]
    created: str | None
    loaded_at: str
    n_users: int
    n_items: int
    retrieval: Literal["exact", "hnsw"]
    retrieval_index: dict[str, Any] | None = Field(
        None,
        description="The HNSW index (hnsw retrieval): build parameters, efSearch, build seconds, "
        "memory, measured recall@10 against exact search, and whether it was read from the "
        "bundle directory.",
    )
    reranker: str | None
    item_attributes: dict[str, Any]
    zenrec_version: str | None
    sample_users: list[Id] = Field(
        default_factory=list, description="A few known user ids (for the demo page)."
    )


class ReloadRequest(_In):
    """Bundle directory to serve next (default: the current bundle's directory, re-read)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"bundle_dir": "runs/ease-v2"}]}
    )

    bundle_dir: str | None = Field(None, max_length=4096)


class ReloadResponse(BaseModel):
    previous_version: str
    version: str
    model: str
    load_seconds: float


class ErrorResponse(BaseModel):
    detail: str | list[dict[str, Any]]
