"""Deterministic generation of Hostaway objects: listings, reservations, conversations and messages.

Every object carries every field (and only the JSON types) that real Hostaway responses showed, in the
real key order, with realistic proportions of nulls, empty strings, 0/1 flags, int-vs-float money and
non-ASCII text. One ``AccountFactory`` per account owns a seeded RNG that later mutations continue, so
the same seed, account id and size always give byte-identical objects.
"""

from __future__ import annotations

import hashlib
import random
import string
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from hostaway_pipeline.simulator import vocab
from hostaway_pipeline.simulator.simtime import format_date, format_timestamp

JsonObject = dict[str, Any]
AccountSize = int | str  # "seed", "empty" or a number of reservations

SEED_RESERVATIONS = 787
SEED_LISTINGS = 7

RESERVATION_STATUSES = (
    "new",
    "modified",
    "cancelled",
    "ownerStay",
    "pending",
    "awaitingPayment",
    "declined",
    "expired",
    "unconfirmed",
    "awaitingGuestVerification",
    "inquiry",
    "inquiryPreapproved",
    "inquiryDenied",
    "inquiryTimedout",
    "inquiryNotPossible",
    "unknown",
)
# Initial mix of an established account: mostly confirmed stays, about one in ten cancelled.
_INITIAL_STATUS_WEIGHTS = {
    "new": 36.0,
    "modified": 44.0,
    "cancelled": 11.0,
    "inquiry": 2.0,
    "pending": 1.0,
    "awaitingPayment": 1.0,
    "ownerStay": 1.0,
    "declined": 1.0,
    "expired": 1.0,
    "inquiryPreapproved": 0.5,
    "inquiryDenied": 0.5,
    "inquiryTimedout": 0.5,
    "unconfirmed": 0.5,
}
_INQUIRY_LIKE = frozenset({"pending", "awaitingPayment", "inquiry", "inquiryPreapproved", "unconfirmed"})


@dataclass(frozen=True)
class Channel:
    channel_id: int
    name: str
    weight: float


AIRBNB = Channel(2018, "airbnbOfficial", 78.0)
CHANNELS = (
    AIRBNB,
    Channel(2005, "bookingcom", 10.0),
    Channel(2002, "homeaway", 6.0),
    Channel(2000, "direct", 4.0),
    Channel(2013, "bookingengine", 2.0),
)
_CHANNEL_BY_ID = {channel.channel_id: channel for channel in CHANNELS}
_CURRENCY_MULTIPLIER = {"JPY": 150, "ISK": 140, "ZAR": 18, "PLN": 4, "CHF": 1, "EUR": 1, "USD": 1}


@dataclass(frozen=True)
class SizePlan:
    """How many objects of each kind an account size stands for."""

    listings: int
    reservations: int


def normalize_size(size: object) -> AccountSize:
    """Validate an account size: ``"seed"``, ``"empty"`` or a non-negative reservation count."""
    if isinstance(size, bool):
        raise ValueError(f"account size must be 'seed', 'empty' or a non-negative integer, got {size!r}")
    if isinstance(size, int):
        if size < 0:
            raise ValueError(f"account size must not be negative, got {size}")
        return size
    if isinstance(size, str):
        text = size.strip().lower()
        if text in ("seed", "empty"):
            return text
        if text.isdigit():
            return int(text)
    raise ValueError(f"account size must be 'seed', 'empty' or a non-negative integer, got {size!r}")


def plan_for_size(size: AccountSize) -> SizePlan:
    size = normalize_size(size)
    if size == "seed":
        return SizePlan(listings=SEED_LISTINGS, reservations=SEED_RESERVATIONS)
    if size == "empty":
        return SizePlan(listings=0, reservations=0)
    assert isinstance(size, int)
    return SizePlan(listings=max(1, round(SEED_LISTINGS * size / SEED_RESERVATIONS)), reservations=size)


class IdAllocator:
    """Realistic, increasing ids in per-account ranges.

    Ranges are chosen by ``account_id % 400`` so accounts with nearby ids never share an id, as on the
    real (global) Hostaway id space: listings 6 digits, reservations and conversations 8 digits,
    messages 9 digits. Each kind lives in its own range so a pipeline that confuses a reservation id
    with a conversation id finds nothing instead of the wrong row.
    """

    # kind: (first id of block 0, ids per block)
    _RANGES = {
        "listing": (100_000, 2_250),
        "reservation": (10_000_000, 100_000),
        "conversation": (50_000_000, 100_000),
        "message": (100_000_000, 2_000_000),
        "detail": (1_000_000_000, 2_000_000),
        "webhook": (1_000, 1_000),
    }

    def __init__(self, account_id: int) -> None:
        block = account_id % 400
        self._next = {kind: start + block * size for kind, (start, size) in self._RANGES.items()}
        self._end = {kind: start + (block + 1) * size for kind, (start, size) in self._RANGES.items()}

    def next(self, kind: str, gap: int = 1) -> int:
        value = self._next[kind]
        if value >= self._end[kind]:
            raise RuntimeError(f"the simulated account ran out of {kind} ids; use a smaller account size")
        self._next[kind] = value + max(1, gap)
        return value


@dataclass
class MessageSpec:
    """What a message is before it gets an id (ids follow insertion order across the account)."""

    conversation_id: int
    is_incoming: bool
    status: str
    date: datetime
    inserted_on: datetime
    body: str
    communication_type: str
    automated: bool = False
    is_seen: bool = True
    seen_at: datetime | None = None


@dataclass
class GeneratedAccount:
    listings: list[JsonObject] = field(default_factory=list)
    reservations: list[JsonObject] = field(default_factory=list)
    conversations: list[JsonObject] = field(default_factory=list)
    conversation_inserted_on: dict[int, str] = field(default_factory=dict)
    messages: list[JsonObject] = field(default_factory=list)
    latest_stamp: datetime | None = None


def _ascii_slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    slug = "".join(ch for ch in decomposed if ch.isascii() and (ch.isalnum() or ch in "-."))
    return slug.lower() or "guest"


def _at_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


class AccountFactory:
    """Builds one account's objects from a seeded RNG; mutations keep drawing from the same RNG."""

    def __init__(self, account_id: int, seed: int) -> None:
        self.account_id = account_id
        self.rng = random.Random(f"hostaway-simulator:{seed}:{account_id}")
        self.ids = IdAllocator(account_id)
        self._listings_built = 0
        rng = self.rng
        self.host_first_name = rng.choice(vocab.HOST_FIRST_NAMES)
        self.host_last_name = rng.choice(vocab.HOST_LAST_NAMES)
        self.host_email = f"{_ascii_slug(self.host_first_name)}@host-{account_id}.example.com"
        self.airbnb_host_user_id = rng.randint(10_000_000, 499_999_999)
        self.airbnb_account = {
            "accessTokenExpiresAt": "2027-06-30 00:00:00",
            "accountId": account_id,
            "airbnbAccountId": str(self.airbnb_host_user_id),
            "email": self.host_email,
            "firstName": self.host_first_name,
            "id": rng.randint(1_000, 99_999),
            "insertedOn": "2023-02-14 09:30:00",
            "isActive": 1,
            "lastName": self.host_last_name,
            "phone": f"+351 91{rng.randint(0, 9)} {rng.randint(100, 999)} {rng.randint(100, 999)}",
            "pictureUrl": f"https://a0.muscache.com/im/pictures/user/{rng.randint(10**8, 10**9)}.jpg",
            "pictureUrlLarge": f"https://a0.muscache.com/im/pictures/user/{rng.randint(10**8, 10**9)}_x.jpg",
            "updatedOn": "2026-05-02 18:04:11",
        }
        self.custom_fields = [
            {
                "id": 301 + index,
                "insertedOn": "2024-01-10 10:00:00",
                "isPublic": index % 2,
                "name": name,
                "possibleValues": possible,
                "type": kind,
                "updatedOn": "2024-01-10 10:00:00",
            }
            for index, (name, possible, kind) in enumerate(
                [
                    ("Arrival flight", None, "text"),
                    ("Early check-in", "yes,no", "select"),
                    ("Parking spot", None, "text"),
                ]
            )
        ]

    # ---- small random helpers -------------------------------------------------------------------
    def _chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def _money(self, low: float, high: float, float_share: float = 0.6) -> int | float:
        """Money the way Hostaway sends it: an int for whole amounts, a float otherwise."""
        amount = self.rng.uniform(low, high)
        if self._chance(float_share):
            value = round(amount, 2)
            if value == int(value):
                value += 0.5
            return value
        return int(round(amount))

    def _hex(self, length: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(length))

    def _code(self, length: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def _phone_number(self) -> str:
        rng = self.rng
        return (
            f"+{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        )

    def _between(self, start: datetime, end: datetime) -> datetime:
        if end <= start:
            return _at_second(start)
        return _at_second(start + timedelta(seconds=self.rng.uniform(0, (end - start).total_seconds())))

    # ---- listings --------------------------------------------------------------------------------
    def new_listing(self, inserted_on: datetime) -> JsonObject:
        rng = self.rng
        listing_id = self.ids.next("listing", gap=rng.randint(1, 3))
        place = rng.choice(vocab.PLACES)
        street = rng.choice(place.streets)
        kind = rng.choice(vocab.LISTING_KINDS)
        name = (
            f"{rng.choice(vocab.LISTING_ADJECTIVES)} {kind} in {place.landmark} "
            f"{rng.choice(vocab.LISTING_EMOJI)} {rng.choice(vocab.LISTING_PERKS)}"
        )
        multiplier = _CURRENCY_MULTIPLIER[place.currency]
        bedrooms = rng.randint(0, 4)
        capacity = max(2, bedrooms * 2 + rng.randint(0, 2))
        description = " ".join(rng.sample(vocab.HOUSE_MANUAL_PARAGRAPHS, k=rng.randint(2, 6)))
        street_number = rng.randint(1, 180)
        address = f"{street} {street_number}, {place.zipcode} {place.city}, {place.country}"
        # One listing in seven has the blank texts and the fee setting seen in the real account.
        self._listings_built += 1
        empty_marker = self._listings_built % 7 == 5
        feature_text = f"{kind.capitalize()} with {rng.choice(vocab.LISTING_PERKS)} near {place.landmark}."
        check_in_start = rng.choice((14, 15, 16))
        cleaning_fee = self._money(25 * multiplier, 90 * multiplier, 0.3)
        amenity_count = rng.randint(69, 97)
        amenities = [
            {"id": self.ids.next("detail"), "amenityId": index + 1, "amenityName": amenity}
            for index, amenity in sorted(
                rng.sample(
                    list(enumerate(vocab.AMENITY_NAMES)), k=min(amenity_count, len(vocab.AMENITY_NAMES))
                )
            )
        ]
        bed_types = [
            {
                "id": self.ids.next("detail"),
                "bedTypeId": rng.choice((1, 2, 3, 4, 32)),
                "quantity": rng.randint(1, 2),
                "bedroomNumber": bedroom,
            }
            for bedroom in range(rng.randint(2, 7))
        ]
        images = []
        for order in range(rng.randint(15, 43)):
            caption = "" if self._chance(0.23) else rng.choice(vocab.IMAGE_CAPTIONS)
            images.append(
                {
                    "id": self.ids.next("detail"),
                    "caption": caption,
                    "bookingEngineCaption": None if self._chance(0.5) else caption,
                    "airbnbCaption": caption if self._chance(0.7) else None,
                    "vrboCaption": None if self._chance(0.6) else caption,
                    "url": f"https://hostaway-platform.s3.us-west-2.amazonaws.com/listing/{self.account_id}-"
                    f"{listing_id}-{self._hex(12)}.jpeg",
                    "sortOrder": order,
                }
            )
        fee_settings: list[JsonObject] = []
        if self._listings_built % 7 == 3:
            stamp = format_timestamp(inserted_on + timedelta(days=3))
            fee_settings.append(
                {
                    "id": self.ids.next("detail"),
                    "accountId": self.account_id,
                    "listingMapId": listing_id,
                    "feeType": "petFee",
                    "feeTitle": "Pet fee 🐾",
                    "feeDescription": None,
                    "feeAppliedPer": "reservation",
                    "amount": 25 * multiplier,
                    "amountType": "flat",
                    "isMandatory": 0,
                    "isQuantitySelectable": 1,
                    "appearsIn": ["bookingEngine", "airbnb", "vrbo", "bookingcom", "direct"],
                    "channelId": 2000,
                    "displayInRent": 0,
                    "parentId": None,
                    "insertedOn": stamp,
                    "updatedOn": stamp,
                    "attachments": [],
                }
            )
        inserted_text = format_timestamp(inserted_on)
        return {
            "id": listing_id,
            "propertyTypeId": rng.choice((1, 2, 3, 8, 16, 29)),
            "name": name,
            "externalListingName": name,
            "internalListingName": f"{place.city} · {street} {street_number}",
            "description": "" if empty_marker else (None if self._chance(0.15) else description),
            "thumbnailUrl": None if self._chance(0.15) else images[0]["url"],
            "houseRules": "No parties 🎉🚫. Quiet hours 22:00-08:00. Please recycle ♻️.",
            "keyPickup": None,
            "specialInstruction": None,
            "doorSecurityCode": ""
            if empty_marker
            else (None if self._chance(0.3) else str(rng.randint(1000, 9999))),
            "country": place.country,
            "countryCode": place.country_code,
            "state": place.state,
            "city": place.city,
            "street": f"{street} {street_number}",
            "address": address,
            "publicAddress": f"{place.landmark}, {place.city}, {place.country}",
            "zipcode": place.zipcode,
            "price": rng.randint(60, 320) * multiplier,
            "starRating": None,
            "weeklyDiscount": rng.choice((1, 0.95, 0.9, 0.85)),
            "monthlyDiscount": rng.choice((1, 0.8, 0.75, 0.7)),
            "propertyRentTax": 0,
            "guestPerPersonPerNightTax": 0,
            "guestStayTax": 0,
            "guestNightlyTax": 0,
            "refundableDamageDeposit": rng.choice((0, 150, 300)) * multiplier,
            "isDepositStayCollected": rng.randint(0, 1),
            "personCapacity": capacity,
            "maxChildrenAllowed": None,
            "maxInfantsAllowed": None,
            "maxPetsAllowed": None,
            "lat": round(place.lat + rng.uniform(-0.02, 0.02), 7),
            "lng": round(place.lng + rng.uniform(-0.02, 0.02), 7),
            "checkInTimeStart": check_in_start,
            "checkInTimeEnd": None if self._chance(0.4) else check_in_start + rng.randint(4, 8),
            "checkOutTime": rng.choice((10, 11, 12)),
            "cancellationPolicy": rng.choice(vocab.CANCELLATION_POLICIES),
            "squareMeters": rng.choice((rng.randint(28, 220), round(rng.uniform(28, 220), 1) + 0.05)),
            "roomType": "entire_home",
            "bathroomType": "private",
            "bedroomsNumber": bedrooms,
            "bedsNumber": max(1, bedrooms + rng.randint(0, 2)),
            "bathroomsNumber": max(1, bedrooms // 2 + 1),
            "guestBathroomsNumber": None,
            "minNights": rng.choice((1, 2, 3)),
            "maxNights": rng.choice((28, 90, 365)),
            "guestsIncluded": rng.randint(1, capacity),
            "cleaningFee": cleaning_fee,
            "checkinFee": 0,
            "priceForExtraPerson": rng.choice((0, 10, 15)) * multiplier,
            "instantBookable": rng.randint(0, 1),
            "instantBookableLeadTime": None,
            "airbnbBookingLeadTime": rng.choice((0, 24, 48)),
            "airbnbBookingLeadTimeAllowRequestToBook": None if self._chance(0.5) else rng.randint(0, 1),
            "airbnbName": name,
            "airbnbSummary": feature_text,
            "airbnbSpace": description,
            "airbnbAccess": "Self check-in with a keypad; the whole place is yours.",
            "airbnbInteraction": "" if empty_marker else "We're a message away, day and night 📱",
            "airbnbNeighborhoodOverview": f"{place.landmark} is a few minutes' walk away.",
            "airbnbTransit": None,
            "airbnbNotes": "Please read the house manual before arrival.",
            "airbnbExportStatus": rng.choice(("exported", "pending", "notExported")),
            "vrboExportStatus": rng.choice(("exported", "notExported")),
            "marriotExportStatus": None,
            "bookingcomExportStatus": None,
            "expediaExportStatus": None,
            "googleExportStatus": rng.choice(("exported", "notExported")),
            "allowSameDayBooking": rng.randint(0, 1),
            "sameDayBookingLeadTime": rng.choice((12, 14, 18)),
            "contactName": self.host_first_name,
            "contactSurName": None,
            "contactPhone1": self.airbnb_account["phone"],
            "contactPhone2": None,
            "contactLanguage": None,
            "contactEmail": None,
            "contactAddress": None,
            "language": "en",
            "currencyCode": place.currency,
            "timeZoneName": place.time_zone,
            "wifiUsername": f"{_ascii_slug(place.city).capitalize()}-{listing_id}",
            "wifiPassword": self._code(10, string.ascii_letters + string.digits),
            "cleannessStatus": None if self._chance(0.5) else rng.choice(("clean", "dirty", "inspected")),
            "cleaningInstruction": None,
            "cleannessStatusUpdatedOn": None,
            "homeawayPropertyName": name,
            "homeawayPropertyHeadline": feature_text,
            "homeawayPropertyDescription": description,
            "bookingcomPropertyName": "" if empty_marker else name,
            "bookingcomPropertyRoomName": f"{kind.capitalize()} ({bedrooms} bedrooms)",
            "bookingcomPropertyDescription": ""
            if empty_marker
            else (None if self._chance(0.3) else description),
            "invoicingContactName": None,
            "invoicingContactSurName": None,
            "invoicingContactPhone1": None,
            "invoicingContactPhone2": None,
            "invoicingContactLanguage": None,
            "invoicingContactEmail": None,
            "invoicingContactAddress": None,
            "invoicingContactCity": None,
            "invoicingContactZipcode": None,
            "invoicingContactCountry": None,
            "attachment": None,
            "listingAmenities": amenities,
            "listingBedTypes": bed_types,
            "listingImages": images,
            "listingTags": [],
            "listingUnits": [],
            "propertyLicenseNumber": None,
            "propertyLicenseType": None,
            "propertyLicenseIssueDate": None,
            "propertyLicenseExpirationDate": None,
            "customFieldValues": [],
            "applyPropertyRentTaxToFees": None,
            "bookingEngineLeadTime": None,
            "cancellationPolicyId": rng.randint(1, 40),
            "vrboCancellationPolicyId": rng.randint(1, 40),
            "marriottCancellationPolicyId": rng.randint(1, 40),
            "bookingCancellationPolicyId": rng.randint(1, 40),
            "listingFeeSetting": fee_settings,
            "isRentalAgreementActive": None,
            "averageNightlyPrice": None,
            "bookingcomPropertyRegisteredInVcs": None,
            "bookingcomPropertyHasVat": None,
            "bookingcomPropertyDeclaresRevenue": None,
            "airbnbCancellationPolicyId": rng.randint(1, 40),
            "airbnbListingUrl": f"https://www.airbnb.com/rooms/{rng.randint(10**7, 10**9)}",
            "vrboListingUrl": f"https://www.vrbo.com/{rng.randint(10**6, 10**7)}",
            "googleVrListingUrl": f"https://www.google.com/travel/hotels/entity/{self._hex(16)}",
            "expediaListingUrl": f"https://www.expedia.com/h{rng.randint(10**6, 10**8)}.Hotel-Information",
            "averageReviewRating": rng.choice((10, 9, round(rng.uniform(8.0, 9.9), 2))),
            "partnersListingMarkup": 1,
            "airbnbOfficialListingMarkup": rng.choice((1.0, 1.03, 1.05)) + 0.001,
            "bookingEngineMarkup": 1,
            "homeawayApiMarkup": rng.choice((1.05, 1.08, 1.1)),
            "marriottListingMarkup": 1,
            "latestActivityOn": inserted_text,
            "bookingEngineUrls": [],
            "marriottListingName": None,
            "airbnbPetFeeAmount": None if self._chance(0.6) else rng.choice((15, 25, 40)) * multiplier,
            "insertedOn": inserted_text,
            "insuranceEligibilityStatus": None,
            "listingSettings": None,
        }

    # ---- reservations ----------------------------------------------------------------------------
    def _pick_channel(self) -> Channel:
        return self.rng.choices(CHANNELS, weights=[channel.weight for channel in CHANNELS])[0]

    def _pick_initial_status(self) -> str:
        statuses = list(_INITIAL_STATUS_WEIGHTS)
        return self.rng.choices(statuses, weights=[_INITIAL_STATUS_WEIGHTS[s] for s in statuses])[0]

    def new_reservation(
        self, listing: JsonObject, inserted_on: datetime, world_now: datetime, status: str | None = None
    ) -> JsonObject:
        """A reservation booked at ``inserted_on``; history up to ``world_now`` is filled in."""
        rng = self.rng
        reservation_id = self.ids.next("reservation", gap=rng.randint(1, 2))
        channel = self._pick_channel()
        status = status or self._pick_initial_status()
        is_airbnb = channel is AIRBNB
        currency = listing["currencyCode"]
        multiplier = _CURRENCY_MULTIPLIER.get(currency, 1)

        lead_days = min(300, int(rng.expovariate(1 / 35)))
        arrival = inserted_on.date() + timedelta(days=lead_days)
        nights = 1 + min(27, int(rng.expovariate(1 / 3.5)))
        departure = arrival + timedelta(days=nights)
        history_end = min(world_now, datetime.combine(departure, time(12)) + timedelta(days=3))
        if status == "new":
            updated_on = self._between(inserted_on, min(history_end, inserted_on + timedelta(hours=2)))
        else:
            updated_on = self._between(inserted_on, history_end)
        cancellation_date: datetime | None = None
        if status == "cancelled":
            cancel_by = min(history_end, datetime.combine(arrival, time(12)))
            cancellation_date = self._between(inserted_on, cancel_by)
            updated_on = max(updated_on, cancellation_date)

        anonymous = self._chance(0.13) or status == "ownerStay"
        first = None if anonymous else rng.choice(vocab.FIRST_NAMES)
        last = None if anonymous else rng.choice(vocab.LAST_NAMES)
        guest_name = "" if anonymous else f"{first} {last}"
        email_slug = _ascii_slug(first or "guest")
        if is_airbnb:
            guest_email: str | None = f"{email_slug}-{self._hex(8)}@guest.airbnb.com"
        elif channel.name == "bookingcom":
            guest_email = f"{email_slug}.{self._hex(6)}@guest.booking.com"
        else:
            guest_email = f"{email_slug}.{_ascii_slug(last or 'x')}@example.org"
        if anonymous or self._chance(0.08):
            guest_email = None
        shares_address = not is_airbnb and not anonymous
        city, country = rng.choice(vocab.GUEST_CITIES)
        blank_address = self._chance(4 / 707)

        def address_part(value: str) -> str | None:
            if blank_address:
                return ""
            return value if shares_address else None

        adults = rng.randint(1, max(1, listing["personCapacity"]))
        children = rng.choice((0, 0, 0, 1, 2))
        nightly = listing["price"] * rng.uniform(0.8, 1.3)
        cleaning_fee = listing["cleaningFee"]
        total_price = self._money(
            nightly * nights + float(cleaning_fee), nightly * nights + float(cleaning_fee) + 1
        )
        confirmation = {
            "airbnbOfficial": "HM" + self._code(8),
            "bookingcom": str(rng.randint(10**9, 10**10 - 1)),
            "homeaway": "HA-" + self._code(6),
        }.get(channel.name)
        channel_reservation_id = confirmation or f"{channel.channel_id}-{listing['id']}-{reservation_id}"
        guest_auth_hash = self._hex(64)

        def airbnb_money(low: float, high: float) -> int | float | None:
            return self._money(low * multiplier, high * multiplier) if is_airbnb else None

        modified_dates = status == "modified" and self._chance(0.15)
        inquiry_like = status in _INQUIRY_LIKE

        custom_values: list[JsonObject] = []
        if self._chance(0.13):
            for definition in rng.sample(self.custom_fields, k=rng.randint(1, 2)):
                stamp = format_timestamp(self._between(inserted_on, updated_on))
                custom_values.append(
                    {
                        "id": self.ids.next("detail"),
                        "customFieldId": definition["id"],
                        "value": rng.choice(("TP 1234 🛬", "yes", "no", "B-12", "Zoë's birthday 🎂")),
                        "insertedOn": stamp,
                        "updatedOn": stamp,
                        "customField": dict(definition),
                    }
                )
        fees: list[JsonObject] = []
        if self._chance(0.25):
            for fee_name in rng.sample(
                ("Cleaning fee", "City tax", "Pet fee", "Linen fee", "VAT", "Resort fee"), k=rng.randint(1, 6)
            ):
                stamp = format_timestamp(inserted_on)
                fees.append(
                    {
                        "id": self.ids.next("detail"),
                        "accountId": self.account_id,
                        "listingMapId": listing["id"],
                        "reservationId": reservation_id,
                        "name": fee_name,
                        "feeType": "",
                        "externalReservationUnitId": None,
                        "amount": self._money(5 * multiplier, 80 * multiplier),
                        "currency": currency,
                        "percentage": None,
                        "isIncluded": rng.randint(0, 1),
                        "isPerNight": None,
                        "isPerPerson": None,
                        "isImported": 1,
                        "insertedOn": stamp,
                        "updatedOn": stamp,
                    }
                )

        updated_text = format_timestamp(updated_on)
        return {
            "id": reservation_id,
            "listingMapId": listing["id"],
            "listingName": listing["name"],
            "channelId": channel.channel_id,
            "source": None if (channel.name == "direct" and self._chance(0.5)) else channel.name,
            "channelName": channel.name,
            "reservationId": channel_reservation_id,
            "hostawayReservationId": str(reservation_id),
            "channelReservationId": channel_reservation_id,
            "externalPropertyId": str(rng.randint(10**7, 10**9)) if is_airbnb else None,
            "externalUnitId": None if is_airbnb or self._chance(0.7) else str(rng.randint(100, 999)),
            "assigneeUserId": None,
            "customerIcalId": None,
            "customerIcalName": None,
            "guestAuthHash": guest_auth_hash,
            "guestPortalUrl": f"https://guest.hostaway.com/{self.account_id}/{guest_auth_hash[:32]}",
            "guestPortalRevampUrl": None,
            "isProcessed": 1,
            "isInitial": 0,
            "isManuallyChecked": 0,
            "isInstantBooked": rng.randint(0, 1),
            "reservationDate": format_timestamp(inserted_on),
            "pendingExpireDate": format_timestamp(inserted_on + timedelta(hours=24))
            if inquiry_like
            else None,
            "guestName": guest_name,
            "guestFirstName": first,
            "guestLastName": last,
            "guestExternalAccountId": str(rng.randint(10**7, 10**9)) if is_airbnb and not anonymous else None,
            "guestZipCode": address_part(f"{rng.randint(10000, 99999)}"),
            "guestAddress": address_part(f"{rng.choice(vocab.LAST_NAMES)}straße {rng.randint(1, 99)}"),
            "guestCity": address_part(city),
            "guestCountry": address_part(country),
            "guestEmail": guest_email,
            "guestPicture": (
                f"https://a0.muscache.com/im/pictures/user/{self._hex(16)}.jpg"
                if is_airbnb and not anonymous and self._chance(0.8)
                else None
            ),
            "guestRecommendations": rng.randint(0, 20) if is_airbnb else 0,
            "guestTrips": rng.randint(0, 60) if is_airbnb else 0,
            "guestWork": ""
            if self._chance(5 / 707)
            else (rng.choice(vocab.GUEST_WORK) if self._chance(0.2) else None),
            "isGuestIdentityVerified": int(is_airbnb and self._chance(0.7)),
            "isGuestVerifiedByEmail": int(self._chance(0.6)),
            "isGuestVerifiedByWorkEmail": int(self._chance(0.05)),
            "isGuestVerifiedByFacebook": int(self._chance(0.1)),
            "originalChannel": None,
            "isGuestVerifiedByGovernmentId": int(is_airbnb and self._chance(0.5)),
            "isGuestVerifiedByPhone": int(self._chance(0.7)),
            "isGuestVerifiedByReviews": int(is_airbnb and self._chance(0.4)),
            "numberOfGuests": adults + children,
            "adults": None if self._chance(0.03) else adults,
            "children": None if self._chance(0.1) else children,
            "infants": None if self._chance(0.1) else rng.choice((0, 0, 0, 1)),
            "pets": None if self._chance(0.1) else rng.choice((0, 0, 0, 0, 1)),
            "arrivalDate": format_date(arrival),
            "departureDate": format_date(departure),
            "isDatesUnspecified": 0,
            "previousArrivalDate": format_date(arrival - timedelta(days=2)) if modified_dates else None,
            "previousDepartureDate": format_date(departure - timedelta(days=1)) if modified_dates else None,
            "checkInTime": listing["checkInTimeStart"],
            "checkOutTime": listing["checkOutTime"],
            "nights": nights,
            "phone": None if anonymous or self._chance(0.2) else self._phone_number(),
            "totalPrice": total_price,
            "remainingBalance": None,
            "taxAmount": None if self._chance(0.4) else self._money(0, 60 * multiplier),
            "channelCommissionAmount": self._money(5 * multiplier, 90 * multiplier)
            if channel.name in ("airbnbOfficial", "bookingcom", "homeaway")
            else None,
            "hostawayCommissionAmount": None,
            "cleaningFee": cleaning_fee,
            "securityDepositFee": None if self._chance(0.5) else listing["refundableDamageDeposit"],
            "isPaid": None,
            "ccName": None,
            "ccNumber": None,
            "ccNumberEndingDigits": None,
            "ccExpirationYear": None,
            "ccExpirationMonth": None,
            "cvc": None,
            "stripeGuestId": "cus_" + self._code(14, string.ascii_letters + string.digits)
            if channel.name in ("direct", "bookingengine")
            else None,
            "stripeMessage": "Payment succeeded"
            if channel.name == "bookingengine" and self._chance(0.5)
            else None,
            "braintreeGuestId": None,
            "braintreeMessage": None,
            "currency": currency,
            "status": status,
            "paymentStatus": None if is_airbnb else rng.choice(("Paid", "Unpaid", "Partially paid")),
            "cancellationDate": format_timestamp(cancellation_date) if cancellation_date else None,
            "cancelledBy": rng.choice(("guest", "host", "channel")) if cancellation_date else None,
            "hostNote": rng.choice(("VIP guest ⭐", "Returning guest", "Needs baby cot", "Late arrival"))
            if self._chance(0.2)
            else None,
            "guestNote": None,
            "doorCode": str(rng.randint(1000, 999999)) if self._chance(0.87) else None,
            "doorCodeVendor": None,
            "doorCodeInstruction": None,
            "comment": "" if self._chance(0.67) else (None if self._chance(0.6) else "Arriving by car 🚗"),
            "confirmationCode": confirmation if confirmation or self._chance(0.5) else None,
            "airbnbExpectedPayoutAmount": airbnb_money(80, 1500),
            "airbnbListingBasePrice": airbnb_money(60, 1300),
            "airbnbListingCancellationHostFee": airbnb_money(0, 50)
            if cancellation_date
            else (0 if is_airbnb else None),
            "airbnbListingCancellationPayout": airbnb_money(0, 300)
            if cancellation_date
            else (0 if is_airbnb else None),
            "airbnbListingCleaningFee": cleaning_fee if is_airbnb else None,
            "airbnbListingHostFee": airbnb_money(3, 60),
            "airbnbListingSecurityPrice": listing["refundableDamageDeposit"] if is_airbnb else None,
            "airbnbOccupancyTaxAmountPaidToHost": None,
            "airbnbTotalPaidAmount": airbnb_money(90, 1700),
            "airbnbTransientOccupancyTaxPaidAmount": airbnb_money(0, 40),
            "airbnbCancellationPolicy": listing["cancellationPolicy"] if is_airbnb else None,
            "isStarred": int(self._chance(0.05)),
            "isArchived": int(self._chance(0.08)),
            "isPinned": int(self._chance(0.02)),
            "reservationCouponId": None,
            "customFieldValues": custom_values,
            "reservationFees": fees,
            "reservationUnit": [],
            "insertedOn": format_timestamp(inserted_on),
            "updatedOn": updated_text,
            "latestActivityOn": updated_text,
            "customerUserId": None,
            "guestLocale": None if self._chance(0.5) else rng.choice(vocab.LOCALES),
            "localeForMessaging": None if self._chance(0.6) else rng.choice(vocab.LOCALES),
            "localeForMessagingSource": None,
            "listingCustomFields": None,
            "rentalAgreementFileUrl": None,
            "reservationAgreement": rng.choice(("not_required", "not_required", "signed")),
            "financeField": [],
            "guestPaymentCardIsVirtual": None,
            "insuranceStatus": "not_insured",
            "claimStatus": None,
            "insurancePolicyId": None,
            "cancellationPolicyId": None if self._chance(0.3) else rng.randint(1, 40),
            "hostProxyEmail": f"reservation-{reservation_id}@proxy.hostaway.com",
        }

    # ---- conversations ---------------------------------------------------------------------------
    def new_conversation(self, reservation: JsonObject) -> JsonObject:
        """A conversation's own fields; markers, preview and embedded Reservation are filled by the store."""
        rng = self.rng
        conversation_id = self.ids.next("conversation", gap=rng.randint(1, 2))
        is_direct = reservation["channelName"] in ("direct", "bookingengine")
        guest_email = reservation["guestEmail"] or f"guest-{conversation_id}@guest.hostaway.com"
        return {
            "id": conversation_id,
            "accountId": self.account_id,
            "listingMapId": reservation["listingMapId"],
            "reservationId": reservation["id"],
            "type": "email" if is_direct else "channel",
            "recipientEmail": reservation["guestEmail"],
            "recipientName": reservation["guestName"] or "Guest",
            "recipientPicture": reservation["guestPicture"],
            "hostEmail": self.host_email,
            "guestEmail": guest_email,
            "hasUnreadMessages": 0,
            "messageSentOn": reservation["insertedOn"],
            "messageReceivedOn": None,
        }

    # ---- messages --------------------------------------------------------------------------------
    def communication_type_for(self, reservation: JsonObject) -> str:
        channel_name = reservation["channelName"]
        if channel_name == "airbnbOfficial":
            return "channel" if self._chance(0.98) else "email"
        if channel_name in ("bookingcom", "homeaway"):
            return "channel" if self._chance(0.9) else "email"
        return self.rng.choices(("email", "sms", "whatsapp"), weights=(70, 15, 15))[0]

    def message_body(
        self,
        reservation: JsonObject,
        listing: JsonObject | None,
        *,
        incoming: bool,
        scheduled: bool = False,
        long_body: bool = False,
    ) -> str:
        rng = self.rng
        first = reservation["guestFirstName"] or "there"
        fill = {
            "first": first,
            "listing": reservation["listingName"],
            "code": reservation["doorCode"] or "at the lockbox",
            "street": listing["street"] if listing else "the next street",
            "landmark": (listing["publicAddress"].split(",")[0]) if listing else "the old town",
            "wifi": listing["wifiPassword"] if listing else "see the manual",
        }
        if long_body:
            paragraphs = [rng.choice(vocab.HOUSE_MANUAL_PARAGRAPHS) for _ in range(rng.randint(20, 60))]
            return f"Hi {first}! Here is the house manual 📖\n\n" + "\n\n".join(paragraphs)
        if scheduled:
            return rng.choice(vocab.SCHEDULED_MESSAGES).format(**fill)
        if incoming:
            return rng.choice(vocab.GUEST_MESSAGES)
        return rng.choice(vocab.HOST_MESSAGES).format(**fill)

    def new_message(
        self, spec: MessageSpec, message_id: int, reservation: JsonObject, listing_time_zone: str
    ) -> JsonObject:
        rng = self.rng
        is_channel = spec.communication_type == "channel"
        is_airbnb_channel = is_channel and reservation["channelName"] == "airbnbOfficial"
        sent = spec.status == "sent"
        outgoing_sent = sent and not spec.is_incoming
        delivered_at = (
            format_timestamp(spec.date + timedelta(seconds=rng.randint(0, 4))) if outgoing_sent else None
        )
        updated_on = spec.date if sent and spec.date > spec.inserted_on else spec.inserted_on
        metadata: JsonObject | None = None
        if is_airbnb_channel:
            stamp = format_timestamp(spec.inserted_on)
            metadata = {
                "id": self.ids.next("detail"),
                "conversationMessageId": message_id,
                "airbnbUserId": rng.randint(10_000_000, 499_999_999)
                if spec.is_incoming
                else self.airbnb_host_user_id,
                "userName": (reservation["guestFirstName"] or "Guest")
                if spec.is_incoming
                else self.host_first_name,
                "insertedOn": stamp,
                "updatedOn": stamp,
                "AirbnbOfficialAccount": None if spec.is_incoming else dict(self.airbnb_account),
                "role": ("guest" if spec.is_incoming else "owner") if self._chance(0.9) else None,
            }
        subject = None
        if spec.communication_type == "email":
            subject = f"Re: Your stay at {reservation['listingName']}"
        return {
            "id": message_id,
            "accountId": self.account_id,
            "userId": None,
            "listingMapId": reservation["listingMapId"],
            "reservationId": reservation["id"],
            "channelId": reservation["channelId"]
            if spec.communication_type in ("channel", "email")
            else None,
            "conversationId": spec.conversation_id,
            "communicationId": rng.randint(1000, 9999) if spec.automated else None,
            "whatsappTemplateId": None,
            "whatsappBusinessTemplateId": None,
            "airbnbThreadMessageId": None,
            "channelThreadMessageId": str(rng.randint(10**9, 10**10)) if is_channel and sent else None,
            "ccEmail1": None,
            "ccEmail2": None,
            "subject": subject,
            "body": spec.body,
            "imagesUrls": None,
            "bookingcomSubthreadId": None,
            "isIncoming": int(spec.is_incoming),
            "isSeen": int(spec.is_seen),
            "isSeenBy": self.host_email if spec.is_incoming and spec.is_seen and self._chance(0.6) else None,
            "originatedBy": "guest" if spec.is_incoming else ("automatic" if spec.automated else "host"),
            "isSeenAt": format_timestamp(spec.seen_at) if spec.seen_at else None,
            "sentUsingHostaway": int(not spec.is_incoming),
            "hash": hashlib.md5(f"{message_id}:{spec.body}".encode()).hexdigest(),
            "objectKey": None,
            "listingTimeZoneName": listing_time_zone,
            "communicationEvent": rng.choice(("reservation.created", "arrival", "departure"))
            if spec.automated
            else None,
            "communicationTimeDelta": None,
            "communicationTimeDeltaSeconds": rng.choice((0, -86400, 3600)) if spec.automated else 0,
            "communicationApplyListingTimeZone": rng.randint(0, 1) if spec.automated else None,
            "communicationAlwaysTrigger": rng.randint(0, 1) if spec.automated else None,
            "status": spec.status,
            "date": format_timestamp(spec.date),
            "sentToChannelDate": delivered_at,
            "sentToChannelAttemptDate": delivered_at,
            "messageSource": reservation["channelName"] if spec.is_incoming else "hostaway",
            "communicationType": spec.communication_type,
            "reasonFailed": None,
            "readableReasonFailed": None,
            "isUnique": rng.randint(0, 1) if spec.automated else None,
            "isUniquePerCommunication": int(spec.automated),
            "retryCount": 0,
            "insertedOn": format_timestamp(spec.inserted_on),
            "updatedOn": format_timestamp(updated_on),
            "notUpdateOnReservationChange": None,
            "Reservation": None,
            "ListingMap": None,
            "Conversation": None,
            "AirbnbOfficialMessageMetadata": metadata,
            "communicationName": None,
            "attachments": None,
            "twilioMessageIdConversationMessageId": None,
            "whatsAppMessageIdConversationMessageId": None,
            "attachment": None,
            "conversationMessageNote": [],
            "conversationSnooze": [],
            "conversationArchive": [],
        }

    def history_message_specs(
        self, conversation_id: int, reservation: JsonObject, listing: JsonObject | None, world_now: datetime
    ) -> list[MessageSpec]:
        """The message history of one conversation up to ``world_now``, plus any scheduled message."""
        rng = self.rng
        inserted_on = datetime.fromisoformat(reservation["insertedOn"])
        departure = datetime.combine(date.fromisoformat(reservation["departureDate"]), time(11))
        arrival = datetime.combine(date.fromisoformat(reservation["arrivalDate"]), time(10))
        history_end = min(world_now - timedelta(minutes=1), departure + timedelta(days=2))
        history_end = max(history_end, inserted_on)
        count = 1 + min(35, int(rng.expovariate(1 / 5.6)))
        specs: list[MessageSpec] = []
        first_incoming = reservation["channelName"] == "airbnbOfficial" and self._chance(0.5)
        first_at = min(history_end, inserted_on + timedelta(seconds=rng.randint(0, 600)))
        specs.append(
            MessageSpec(
                conversation_id=conversation_id,
                is_incoming=first_incoming,
                status="sent",
                date=first_at,
                inserted_on=first_at,
                communication_type=self.communication_type_for(reservation),
                body=self.message_body(reservation, listing, incoming=first_incoming),
                automated=not first_incoming,
            )
        )
        for moment in sorted(self._between(first_at, history_end) for _ in range(count - 1)):
            incoming = self._chance(0.47)
            specs.append(
                MessageSpec(
                    conversation_id=conversation_id,
                    is_incoming=incoming,
                    status="sent",
                    date=moment,
                    inserted_on=moment,
                    communication_type=self.communication_type_for(reservation),
                    body=self.message_body(
                        reservation, listing, incoming=incoming, long_body=not incoming and self._chance(0.03)
                    ),
                )
            )
        # Guests read by the host, except sometimes the latest message of a recent conversation.
        last = specs[-1]
        unread_tail = last.is_incoming and world_now - last.date < timedelta(days=3) and self._chance(0.7)
        for spec in specs:
            if spec.is_incoming:
                spec.is_seen = not (unread_tail and spec is last)
                if spec.is_seen:
                    spec.seen_at = min(world_now, spec.date + timedelta(minutes=rng.randint(1, 240)))
        upcoming = arrival - timedelta(days=1)
        if (
            upcoming > world_now
            and reservation["status"] not in ("cancelled", "declined", "expired")
            and self._chance(0.65)
        ):
            specs.append(
                MessageSpec(
                    conversation_id=conversation_id,
                    is_incoming=False,
                    status="awaiting",
                    date=upcoming,
                    inserted_on=min(world_now, first_at + timedelta(minutes=1)),
                    communication_type=self.communication_type_for(reservation),
                    automated=True,
                    body=self.message_body(reservation, listing, incoming=False, scheduled=True),
                )
            )
        return specs


def generate_account(
    account_id: int, seed: int, size: AccountSize, world_now: datetime
) -> tuple[AccountFactory, GeneratedAccount]:
    """All objects of a fresh account whose history ends at ``world_now``."""
    plan = plan_for_size(size)
    factory = AccountFactory(account_id, seed)
    rng = factory.rng
    generated = GeneratedAccount()
    if plan.listings == 0 and plan.reservations == 0:
        return factory, generated

    history_days = 540
    listing_inserted = sorted(
        _at_second(world_now - timedelta(days=history_days + rng.uniform(5, 400)))
        for _ in range(plan.listings)
    )
    generated.listings = [factory.new_listing(moment) for moment in listing_inserted]
    listings_by_id = {listing["id"]: listing for listing in generated.listings}

    booking_moments = sorted(
        _at_second(world_now - timedelta(seconds=rng.uniform(3600, history_days * 86400)))
        for _ in range(plan.reservations)
    )
    specs: list[tuple[MessageSpec, JsonObject]] = []
    for moment in booking_moments:
        listing = rng.choice(generated.listings)
        reservation = factory.new_reservation(listing, moment, world_now)
        conversation = factory.new_conversation(reservation)
        generated.reservations.append(reservation)
        generated.conversations.append(conversation)
        generated.conversation_inserted_on[conversation["id"]] = reservation["insertedOn"]
        for spec in factory.history_message_specs(conversation["id"], reservation, listing, world_now):
            specs.append((spec, reservation))

    # Message ids follow insertion order across the whole account, like an auto-increment key.
    specs.sort(key=lambda pair: (pair[0].inserted_on, pair[0].conversation_id, pair[0].date))
    for spec, reservation in specs:
        listing = listings_by_id[reservation["listingMapId"]]
        message_id = factory.ids.next("message", gap=rng.randint(1, 3))
        generated.messages.append(factory.new_message(spec, message_id, reservation, listing["timeZoneName"]))
    return factory, generated


def channel_for_id(channel_id: int) -> Channel | None:
    return _CHANNEL_BY_ID.get(channel_id)
