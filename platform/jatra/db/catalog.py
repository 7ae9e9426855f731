"""Timetable content: stations, trains and their ordered stops, coaches and seats, journeys, fare classes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from jatra.db.base import Base


class Station(Base):
    __tablename__ = "stations"
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    division: Mapped[str] = mapped_column(String(40))


class SeatClass(Base):
    """A class of accommodation and its fare rule: rate per km with a minimum, plus VAT on AC classes."""

    __tablename__ = "seat_classes"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    rate_per_km: Mapped[Decimal] = mapped_column(Numeric(6, 3))
    minimum_fare: Mapped[int] = mapped_column(Integer)
    vat_percent: Mapped[int] = mapped_column(SmallInteger, default=0)
    berth: Mapped[bool] = mapped_column(default=False)


class Train(Base):
    __tablename__ = "trains"
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(60))
    #: ISO weekday (1 = Monday) on which the train does not run, if any
    off_day: Mapped[int | None] = mapped_column(SmallInteger)
    #: minutes after local midnight at which the train leaves its origin
    departs_min: Mapped[int] = mapped_column(SmallInteger)


class TrainStop(Base):
    __tablename__ = "train_stops"
    __table_args__ = (
        UniqueConstraint("train_number", "station_code"),
        CheckConstraint("arrive_min IS NULL OR depart_min IS NULL OR arrive_min <= depart_min", name="times"),
    )
    train_number: Mapped[int] = mapped_column(
        ForeignKey("trains.number", ondelete="CASCADE"), primary_key=True
    )
    #: 0 for the origin; a seat is sold per leg between consecutive stops
    seq: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    station_code: Mapped[str] = mapped_column(ForeignKey("stations.code"), index=True)
    #: minutes after departure from the origin; NULL at the origin (arrive) and the terminus (depart)
    arrive_min: Mapped[int | None] = mapped_column(SmallInteger)
    depart_min: Mapped[int | None] = mapped_column(SmallInteger)
    distance_km: Mapped[int] = mapped_column(SmallInteger)


class Coach(Base):
    __tablename__ = "coaches"
    __table_args__ = (UniqueConstraint("train_number", "code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    train_number: Mapped[int] = mapped_column(ForeignKey("trains.number", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(8))
    seat_class: Mapped[str] = mapped_column(ForeignKey("seat_classes.code"))
    position: Mapped[int] = mapped_column(SmallInteger)


class Seat(Base):
    __tablename__ = "seats"
    __table_args__ = (UniqueConstraint("coach_id", "number"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    coach_id: Mapped[int] = mapped_column(ForeignKey("coaches.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(SmallInteger)


class Journey(Base):
    """One run of a train, identified by the local date it leaves its origin."""

    __tablename__ = "journeys"
    __table_args__ = (UniqueConstraint("train_number", "service_date"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    train_number: Mapped[int] = mapped_column(ForeignKey("trains.number", ondelete="CASCADE"))
    service_date: Mapped[dt.date] = mapped_column(Date, index=True)
    departs_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
