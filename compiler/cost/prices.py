"""The price data file, loaded and checked by pydantic."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Price(Model):
    unit: str
    source: str
    price: float | None = None
    table: dict[str, float] | None = None  # keyed by what varies: architecture, instance class

    @model_validator(mode="after")
    def _one(self) -> Price:
        if (self.price is None) == (self.table is None):
            raise ValueError("a price has either `price` or `table`")
        return self


class Region(Model):
    checked: str
    prices: dict[str, Price]


class Allowance(Model):
    quantity: float
    name: str


class PriceBook(Model):
    regions: dict[str, Region]
    fargate_spot_discount: float = Field(alias="fargateSpotDiscount", ge=0, lt=1)
    allowances: dict[str, Allowance]


class Unpriced(LookupError):
    """The data has no price for this (a region, an instance class)."""


class Prices:
    """One region's prices."""

    def __init__(self, book: PriceBook, region: str) -> None:
        if region not in book.regions:
            raise Unpriced(f"no prices for {region} (prices.yaml has {', '.join(sorted(book.regions))}); "
                           f"pass --prices-region to estimate with another region's")
        self.book, self.region = book, region
        self.data = book.regions[region]

    def rate(self, meter: str, key: str | None = None) -> float:
        price = self.data.prices[meter]
        if price.table is None:
            assert price.price is not None
            return price.price
        if key not in price.table:
            raise Unpriced(f"{meter}: no price for {key} in {self.region}")
        return price.table[key]

    def unit(self, meter: str) -> str:
        return self.data.prices[meter].unit

    def source(self, meter: str) -> str:
        return self.data.prices[meter].source


@cache
def price_book() -> PriceBook:
    text = (resources.files("flowbuilder.compiler.cost") / "prices.yaml").read_text("utf-8")
    return PriceBook.model_validate(yaml.safe_load(text))
