"""A small garden centre: plants, prices, stock and orders."""

state = {
    "plants": {
        "P1": {"name": "fern", "price": 12, "stock": 4},
        "P2": {"name": "rose", "price": 8, "stock": 10},
        "P3": {"name": "olive", "price": 40, "stock": 1},
    },
    "orders": [],
}

# --- Catalogue ---


def find_plant(name: str) -> str:
    """Finds the id of a plant by its common name.

    Args:
        name: The plant's common name, e.g. fern or rose.
    """
    for plant_id, plant in state["plants"].items():
        if plant["name"] == name:
            return plant_id
    raise ValueError(f"no plant called {name!r}")


def plant_price(plant_id: str) -> int:
    """Gets the price of a plant in euros.

    Args:
        plant_id: The plant's id, e.g. P1.
    """
    if plant_id not in state["plants"]:
        raise ValueError(f"no plant {plant_id!r}")
    return state["plants"][plant_id]["price"]


# --- Orders ---


def order_plant(plant_id: str, quantity: int) -> str:
    """Orders some units of a plant.

    Args:
        plant_id: The plant's id, e.g. P2.
        quantity: How many units to order.
    """
    plant = state["plants"].get(plant_id)
    if plant is None:
        raise ValueError(f"no plant {plant_id!r}")
    if quantity < 1 or quantity > plant["stock"]:
        raise ValueError(f"quantity must be between 1 and {plant['stock']}")
    plant["stock"] -= quantity
    state["orders"].append({"plant": plant_id, "quantity": quantity})
    return f"order {len(state['orders'])}"


def plant_stock(plant_id: str) -> int:
    """Gets how many units of a plant are in stock.

    Args:
        plant_id: The plant's id, e.g. P3.
    """
    if plant_id not in state["plants"]:
        raise ValueError(f"no plant {plant_id!r}")
    return state["plants"][plant_id]["stock"]
